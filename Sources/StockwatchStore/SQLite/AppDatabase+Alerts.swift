import Foundation
import GRDB
import StockwatchModel

extension AppDatabase: AlertStore {
    public func addAlerts(_ specs: [AlertSpec], limitPerUser: Int?, now: Date) throws(StockwatchError) -> [AlertJSON] {
        try write { db in
            var userIDs: [String: Int64] = [:]
            var added: [AlertJSON] = []
            added.reserveCapacity(specs.count)
            // One cached statement for all rows: 100,000 alerts import in about a second.
            let insert = try db.cachedStatement(sql: """
                INSERT INTO alerts (user_id, symbol, kind, value, percent, window_seconds, trigger, cooldown_seconds,
                    rearm_margin_percent, channels, state, note, created_at, expires_at, schedule, start_at, start_round)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            // One round for all the alerts this transaction adds (see migration v15).
            let round = try Int64.fetchOne(db, sql: Self.nextStartRoundSQL) ?? 1
            // Each symbol's newest quote, the start of its new alerts: sought once per
            // symbol, not once per alert (100,000 alerts over 5,000 symbols).
            let newestQuote = try db.cachedStatement(sql: "SELECT \(Self.newestQuoteSQL)")
            var startAt: [String: Int64] = [:]
            var channelsJSON = JSONText()
            for spec in specs {
                let name = spec.user ?? UserRecord.defaultName
                let userID: Int64
                if let known = userIDs[name] {
                    userID = known
                } else {
                    userID = try Self.userID(name, in: db, now: now)
                    userIDs[name] = userID
                }
                if let limit = limitPerUser, try AlertRecord.owned(by: userID).fetchCount(db) >= limit {
                    throw StockwatchError.limitReached(kind: "alert", limit: limit, key: "[serve] max_alerts_per_user")
                }
                let start: Int64
                if let known = startAt[spec.symbol] {
                    start = known
                } else {
                    start = try Int64.fetchOne(newestQuote, arguments: [spec.symbol]) ?? 0
                    startAt[spec.symbol] = start
                }
                let channels = spec.channels ?? []
                channelsJSON.removeAll()
                channelsJSON.strings(channels)
                try insert.execute(arguments: [
                    userID, spec.symbol, spec.condition.kind.rawValue, spec.condition.value, spec.condition.percent,
                    spec.condition.windowSeconds, spec.trigger.rawValue, spec.cooldownSeconds, spec.rearmMarginPercent,
                    String(decoding: channelsJSON.bytes, as: UTF8.self), spec.state.rawValue, spec.note,
                    now.milliseconds, spec.expiresAt?.milliseconds, spec.schedule, start, round,
                ])
                let alert = AlertRecord(
                    id: db.lastInsertedRowID, userId: userID, symbol: spec.symbol, kind: spec.condition.kind, value: spec.condition.value,
                    percent: spec.condition.percent, windowSeconds: spec.condition.windowSeconds, trigger: spec.trigger,
                    cooldownSeconds: spec.cooldownSeconds, rearmMarginPercent: spec.rearmMarginPercent, channels: channels,
                    state: spec.state, note: spec.note, createdAt: Date(milliseconds: now.milliseconds), expiresAt: spec.expiresAt,
                    schedule: spec.schedule)
                added.append(AlertJSON(alert, user: name))
            }
            return added
        }
    }

    public func alerts(_ query: AlertQuery) throws(StockwatchError) -> [AlertJSON] {
        try read { db in
            var request = AlertRecord.order(Column("id"))
            if let user = query.user { request = request.owned(by: try Self.existingUserID(user, in: db)) }
            if let symbol = query.symbol { request = request.on(symbol: symbol) }
            if let state = query.state { request = request.filter(sql: "\(AlertRecord.state(of: "alerts")) = ?", arguments: [state.rawValue]) }
            if let afterID = query.afterID { request = request.filter(Column("id") > afterID) }
            if let limit = query.limit { request = request.limit(limit) }
            let names = try Self.userNames(db)
            return try request.fetchAll(db).map { AlertJSON($0, user: names[$0.userId] ?? "?") }
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
