import Foundation
import GRDB
import StockwatchModel

extension AppDatabase: AlertStore {
    public func addAlerts(_ specs: [AlertSpec], limitPerUser: Int?, now: Date) throws(StockwatchError) -> [AlertJSON] {
        try write { db in
            // One round for all the alerts this transaction adds (see migration v15).
            let round = try Int64.fetchOne(db, sql: Self.nextStartRoundSQL) ?? 1
            // Each user's id and each symbol's newest quote (the start of its new alerts):
            // sought once each, not once per alert (100,000 alerts over 5,000 symbols).
            var userIDs: [String: Int64] = [:]
            var startAt: [String: Int64] = [:]
            let newestQuote = try RawStatement(db, "SELECT \(Self.newestQuoteSQL)")
            var rows: [(userID: Int64, start: Int64)] = []
            rows.reserveCapacity(specs.count)
            for spec in specs {
                let name = spec.user ?? UserRecord.defaultName
                if userIDs[name] == nil { userIDs[name] = try Self.userID(name, in: db, now: now) }
                if startAt[spec.symbol] == nil {
                    newestQuote.bind(1, spec.symbol)
                    startAt[spec.symbol] = try newestQuote.step() ? newestQuote.int64(0) : 0
                    newestQuote.reset()
                }
                rows.append((userIDs[name]!, startAt[spec.symbol]!))
            }
            // All or nothing, so counted before any row is written.
            if let limit = limitPerUser {
                for (name, userID) in userIDs {
                    let adding = specs.count(where: { ($0.user ?? UserRecord.defaultName) == name })
                    if try AlertRecord.owned(by: userID).fetchCount(db) + adding > limit {
                        throw StockwatchError.limitReached(kind: "alert", limit: limit, key: "[serve] max_alerts_per_user")
                    }
                }
            }
            // 100 rows a statement, bound through the C API: one statement and a
            // `StatementArguments` per alert were half the time of importing 100,000.
            let created = now.milliseconds
            var channelsJSON = JSONText()
            var ids: [Int64] = []
            ids.reserveCapacity(specs.count)
            try RowBatches(
                head: """
                    INSERT INTO alerts (user_id, symbol, kind, value, percent, window_seconds, trigger, cooldown_seconds,
                        rearm_margin_percent, channels, state, note, created_at, expires_at, schedule, start_at, start_round)
                    """,
                row: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", parameters: 17, tail: "RETURNING id"
            ).run(db, count: specs.count) { statement, offset, index in
                let spec = specs[index]
                channelsJSON.removeAll()
                channelsJSON.strings(spec.channels ?? [])
                statement.bind(offset + 1, rows[index].userID)
                statement.bind(offset + 2, spec.symbol)
                statement.bind(offset + 3, spec.condition.kind.rawValue)
                statement.bind(offset + 4, spec.condition.value)
                statement.bind(offset + 5, spec.condition.percent)
                statement.bind(offset + 6, spec.condition.windowSeconds)
                statement.bind(offset + 7, spec.trigger.rawValue)
                statement.bind(offset + 8, spec.cooldownSeconds)
                statement.bind(offset + 9, spec.rearmMarginPercent)
                statement.bind(offset + 10, String(decoding: channelsJSON.bytes, as: UTF8.self))
                statement.bind(offset + 11, spec.state.rawValue)
                statement.bind(offset + 12, spec.note)
                statement.bind(offset + 13, created)
                statement.bind(offset + 14, spec.expiresAt?.milliseconds)
                statement.bind(offset + 15, spec.schedule)
                statement.bind(offset + 16, rows[index].start)
                statement.bind(offset + 17, round)
            } read: { ids.append($0.int64(0)) }
            // RETURNING names no order; a statement's rows take rising ids in VALUES order.
            ids.sort()
            return specs.indices.map { index in
                let spec = specs[index]
                let alert = AlertRecord(
                    id: ids[index], userId: rows[index].userID, symbol: spec.symbol, kind: spec.condition.kind, value: spec.condition.value,
                    percent: spec.condition.percent, windowSeconds: spec.condition.windowSeconds, trigger: spec.trigger,
                    cooldownSeconds: spec.cooldownSeconds, rearmMarginPercent: spec.rearmMarginPercent, channels: spec.channels ?? [],
                    state: spec.state, note: spec.note, createdAt: Date(milliseconds: created), expiresAt: spec.expiresAt,
                    schedule: spec.schedule)
                return AlertJSON(alert, user: spec.user ?? UserRecord.defaultName)
            }
        }
    }

    public func alerts(_ query: AlertQuery) throws(StockwatchError) -> [AlertJSON] {
        try read { db in
            var filters = ["TRUE"]
            if query.user != nil { filters.append("user_id = ?") }
            if query.symbol != nil { filters.append("symbol = ?") }
            if query.state != nil { filters.append("\(AlertRecord.state(of: "alerts")) = ?") }
            if query.afterID != nil { filters.append("id > ?") }
            // Stepped through the C API: a page is thousands of rows (`alert list` of 100,000).
            let select = try RawStatement(db, """
                SELECT \(AlertRecord.selectedColumns.joined(separator: ", ")) FROM alerts
                WHERE \(filters.joined(separator: " AND ")) ORDER BY id \(query.limit == nil ? "" : "LIMIT ?")
                """)
            var parameter: Int32 = 0
            func next() -> Int32 {
                parameter += 1
                return parameter
            }
            if let user = query.user { select.bind(next(), try Self.existingUserID(user, in: db)) }
            if let symbol = query.symbol { select.bind(next(), symbol) }
            if let state = query.state { select.bind(next(), state.rawValue) }
            if let afterID = query.afterID { select.bind(next(), afterID) }
            if let limit = query.limit { select.bind(next(), Int64(limit)) }
            let names = try Self.userNames(db)
            var alerts: [AlertJSON] = []
            while try select.step() {
                let alert = try AlertRecord(columns: select)
                alerts.append(AlertJSON(alert, user: names[alert.userId] ?? "?"))
            }
            return alerts
        }
    }

    public func alert(id: Int64, ownerID: Int64?) throws(StockwatchError) -> AlertJSON {
        try read { db in
            guard let alert = try AlertRecord.fetchOne(db, key: id), ownerID.map({ $0 == alert.userId }) ?? true else {
                throw StockwatchError.notFound(kind: "alert", id: String(id))
            }
            return AlertJSON(alert, user: try UserRecord.fetchOne(db, key: alert.userId)?.name ?? "?")
        }
    }

    public func removeAlerts(ids: [Int64], ownerID: Int64?) throws(StockwatchError) {
        try write { db in
            for id in ids {
                let owner = try AlertRecord.filter(key: id).select(Column("user_id"), as: Int64.self).fetchOne(db)
                if owner != nil, ownerID == nil || owner == ownerID { continue }
                throw StockwatchError.notFound(kind: "alert", id: String(id))
            }
            try AlertRecord.deleteAll(db, keys: ids)
        }
    }

    public func changeAlertState(id: Int64, _ decide: @Sendable (AlertJSON) throws(StockwatchError) -> AlertState?) throws(StockwatchError) -> AlertJSON {
        try write { db in
            guard var alert = try AlertRecord.fetchOne(db, key: id) else { throw StockwatchError.notFound(kind: "alert", id: String(id)) }
            let user = try UserRecord.fetchOne(db, key: alert.userId)?.name ?? "?"
            guard let state = try decide(AlertJSON(alert, user: user)), state != alert.state else { return AlertJSON(alert, user: user) }
            alert.state = state
            if state == .armed {
                alert.startAt = try Int64.fetchOne(db, sql: "SELECT \(Self.newestQuoteSQL)", arguments: [alert.symbol]) ?? 0
                // Re-armed: a trailing rule's trail starts again at the price it judges.
                try db.execute(sql: "DELETE FROM alert_trails WHERE alert_id = ?", arguments: [id])
                alert.trailingFrom = nil
                try db.execute(sql: "UPDATE alerts SET start_round = (\(Self.nextStartRoundSQL)) WHERE id = ?", arguments: [id])
            }
            try alert.update(db, columns: ["state", "start_at"])
            // Written, its state outranks an end or a firing kept aside (migrations v23,
            // v25); a resumed alert must read as neither.
            try db.execute(sql: "DELETE FROM alert_ends WHERE alert_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM alert_firing WHERE alert_id = ?", arguments: [id])
            return AlertJSON(alert, user: user)
        }
    }

    public func snoozeAlert(id: Int64, until: Date?) throws(StockwatchError) -> AlertJSON {
        try write { db in
            guard var alert = try AlertRecord.fetchOne(db, key: id) else { throw StockwatchError.notFound(kind: "alert", id: String(id)) }
            alert.snoozedUntil = until.map { Date(milliseconds: $0.milliseconds) }
            try alert.update(db, columns: ["snoozed_until"])
            return AlertJSON(alert, user: try UserRecord.fetchOne(db, key: alert.userId)?.name ?? "?")
        }
    }

    /// Where a new or re-armed alert starts judging: the newest quote of its symbol, which
    /// the next evaluate judges, so that older history never fires it (0: no quote yet).
    static let newestQuoteSQL = "(SELECT COALESCE(max(observed_at), 0) FROM quotes WHERE symbol = ?)"
}
