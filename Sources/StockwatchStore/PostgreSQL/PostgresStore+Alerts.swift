import Foundation
import PostgresNIO
import StockwatchModel

extension PostgresStore: AlertStore {
    /// One INSERT for all of them, its rows from a JSON document (`jsonb_to_recordset`
    /// binds every value, nulls included, in one parameter).
    public func addAlerts(_ specs: [AlertSpec], limitPerUser: Int?, now: Date) throws(StockwatchError) -> [AlertJSON] {
        guard !specs.isEmpty else { return [] }
        let added = try insertAlerts(specs, limitPerUser: limitPerUser, now: now)
        if specs.count >= Self.bulkRows { refreshStatistics(of: ["alerts", "alert_starts"]) }
        return added
    }

    private func insertAlerts(_ specs: [AlertSpec], limitPerUser: Int?, now: Date) throws(StockwatchError) -> [AlertJSON] {
        try write { db in
            var userIDs: [String: Int64] = [:]
            for name in Set(specs.map { $0.user ?? UserRecord.defaultName }).sorted() {
                userIDs[name] = try await Self.userID(name, db, now: now, lock: true)
            }
            if let limit = limitPerUser {
                let adding = Dictionary(grouping: specs, by: { $0.user ?? UserRecord.defaultName }).mapValues(\.count)
                for (name, count) in adding {
                    let have = try await db.value("SELECT count(*) FROM alerts WHERE user_id = \(userIDs[name]!)", Int.self) ?? 0
                    if have + count > limit { throw StockwatchError.limitReached(kind: "alert", limit: limit, key: "[serve] max_alerts_per_user") }
                }
            }
            let rows = specs.enumerated().map { index, spec in
                NewAlertRow(
                    n: index, user_id: userIDs[spec.user ?? UserRecord.defaultName]!, symbol: spec.symbol, kind: spec.condition.kind.rawValue,
                    value: spec.condition.value, percent: spec.condition.percent, window_seconds: spec.condition.windowSeconds,
                    trigger: spec.trigger.rawValue, cooldown_seconds: spec.cooldownSeconds, rearm_margin_percent: spec.rearmMarginPercent,
                    channels: spec.channels ?? [], state: spec.state.rawValue, note: spec.note, expires_at: spec.expiresAt?.milliseconds,
                    schedule: spec.schedule)
            }
            let document = String(decoding: try JSONEncoder().encode(rows), as: UTF8.self)
            let at = now.milliseconds
            // Ids are drawn in the order the rows are produced (by n): sorted, they follow the specs.
            // Each alert starts from its symbol's latest quote (0: none yet).
            let ids = try await db.values("""
                WITH added AS (
                    INSERT INTO alerts (user_id, symbol, kind, value, percent, window_seconds, trigger, cooldown_seconds,
                        rearm_margin_percent, channels, state, note, created_at, expires_at, schedule)
                    SELECT x.user_id, x.symbol, x.kind, x.value, x.percent, x.window_seconds, x.trigger, x.cooldown_seconds,
                        x.rearm_margin_percent, x.channels, x.state, x.note, \(at), x.expires_at, x.schedule
                    FROM jsonb_to_recordset(\(document)::jsonb) AS x(n INT, user_id BIGINT, symbol TEXT, kind TEXT, value DOUBLE PRECISION,
                        percent DOUBLE PRECISION, window_seconds BIGINT, trigger TEXT, cooldown_seconds BIGINT, rearm_margin_percent DOUBLE PRECISION,
                        channels JSONB, state TEXT, note TEXT, expires_at BIGINT, schedule TEXT)
                    ORDER BY x.n
                    RETURNING id, symbol
                )
                INSERT INTO alert_starts (alert_id, start_at)
                SELECT added.id, (SELECT COALESCE(max(q.observed_at), 0) FROM quotes q WHERE q.symbol = added.symbol) FROM added
                RETURNING alert_id
                """, Int64.self).sorted()
            guard ids.count == specs.count else { throw StockwatchError.internal("inserted \(ids.count) of \(specs.count) alerts") }
            return zip(ids, specs).map { id, spec in
                AlertJSON(AlertRecord(
                    id: id, userId: 0, symbol: spec.symbol, kind: spec.condition.kind, value: spec.condition.value,
                    percent: spec.condition.percent, windowSeconds: spec.condition.windowSeconds, trigger: spec.trigger,
                    cooldownSeconds: spec.cooldownSeconds, rearmMarginPercent: spec.rearmMarginPercent, channels: spec.channels ?? [],
                    state: spec.state, note: spec.note, createdAt: Date(milliseconds: at), expiresAt: spec.expiresAt, schedule: spec.schedule),
                    user: spec.user ?? UserRecord.defaultName)
            }
        }
    }

    public func alerts(_ query: AlertQuery) throws(StockwatchError) -> [AlertJSON] {
        try read { db in
            let ownerID: Int64? = if let user = query.user { try await Self.existingUserID(user, db) } else { nil }
            return try await Self.alerts(db, ownerID: ownerID, symbol: query.symbol, state: query.state?.rawValue, afterID: query.afterID, limit: query.limit)
        }
    }

    public func alert(id: Int64, ownerID: Int64?) throws(StockwatchError) -> AlertJSON {
        try read { db in
            guard let alert = try await Self.alerts(db, id: id, ownerID: ownerID).first else {
                throw StockwatchError.notFound(kind: "alert", id: String(id))
            }
            return alert
        }
    }

    public func removeAlerts(ids: [Int64], ownerID: Int64?) throws(StockwatchError) {
        try write { db in
            let owners = Dictionary(
                try await db.rows("SELECT id, user_id FROM alerts WHERE id = ANY(\(ids)) FOR UPDATE", (Int64, Int64).self).map { ($0.0, $0.1) },
                uniquingKeysWith: { first, _ in first })
            for id in ids where owners[id] == nil || (ownerID != nil && owners[id] != ownerID) {
                throw StockwatchError.notFound(kind: "alert", id: String(id))
            }
            try await db.execute("DELETE FROM alerts WHERE id = ANY(\(ids))")
        }
    }

    public func changeAlertState(id: Int64, _ decide: @Sendable (AlertJSON) throws(StockwatchError) -> AlertState?) throws(StockwatchError) -> AlertJSON {
        // `decide` is not escaping: the transaction uses it before this method returns, and
        // the box lets go of it then, while the finished task may still hold the box.
        try withoutActuallyEscaping(decide) { (decide) throws(StockwatchError) -> AlertJSON in
            let box = DecisionBox(decide)
            defer { box.decide = nil }
            return try write { db in
                guard try await db.value("SELECT id FROM alerts WHERE id = \(id) FOR UPDATE", Int64.self) != nil,
                      var alert = try await Self.alerts(db, id: id).first
                else { throw StockwatchError.notFound(kind: "alert", id: String(id)) }
                guard let state = try box.decide!(alert), state != alert.state else { return alert }
                try await db.execute("UPDATE alerts SET state = \(state.rawValue) WHERE id = \(id)")
                if state == .armed {
                    // Resumed: judged from its symbol's latest quote, as a new alert is.
                    try await db.execute("""
                        INSERT INTO alert_starts (alert_id, start_at)
                        SELECT \(id), COALESCE(max(q.observed_at), 0) FROM quotes q WHERE q.symbol = \(alert.symbol)
                        ON CONFLICT (alert_id) DO UPDATE SET start_at = excluded.start_at
                        """)
                    // Re-armed: a trailing rule's trail starts again at the price it judges.
                    try await db.execute("DELETE FROM alert_trails WHERE alert_id = \(id)")
                    alert.trailingFrom = nil
                }
                alert.state = state
                return alert
            }
        }
    }

    public func snoozeAlert(id: Int64, until: Date?) throws(StockwatchError) -> AlertJSON {
        try write { db in
            guard try await db.value("UPDATE alerts SET snoozed_until = \(until?.milliseconds) WHERE id = \(id) RETURNING id", Int64.self) != nil,
                  let alert = try await Self.alerts(db, id: id).first
            else { throw StockwatchError.notFound(kind: "alert", id: String(id)) }
            return alert
        }
    }

    /// An alert's last firing, as on SQLite (`AlertRecord.lastFiredAt`): its newest
    /// notification's observed time, or the stored value when that is newer (one written
    /// before migration v12, or copied from such a store). Evaluate does not write it.
    static let lastFiredAt = "GREATEST(a.last_fired_at, (SELECT max(n.observed_at) FROM notifications n WHERE n.alert_id = a.id))"

    /// An alert's state as readers show it (`Evaluation.shownStateSQL`, migration v13): a
    /// derived level has started once its `alert_starts` row is gone. `alert`: the alert's
    /// table or alias; `start`: that row's `alert_id` (a LEFT JOIN).
    static func state(of alert: String, start: String) -> String {
        Evaluation.shownStateSQL(of: alert, started: "\(start) IS NULL")
    }

    static let shownState = state(of: "a", start: "s.alert_id")

    static let alertColumns = """
        a.id, a.user_id, a.symbol, a.kind, a.value, a.percent, a.window_seconds, a.trigger, a.cooldown_seconds,
        a.rearm_margin_percent, a.channels::text, \(shownState), a.note, a.created_at, a.expires_at, \(lastFiredAt), s.start_at, a.snoozed_until, a.schedule,
        (SELECT tr.trailing_from FROM alert_trails tr WHERE tr.alert_id = a.id)
        """

    /// Alerts by id with their user's name; every argument narrows (nil: any).
    static func alerts(
        _ db: PostgresConnection, id: Int64? = nil, ownerID: Int64? = nil, symbol: String? = nil, state: String? = nil,
        afterID: Int64? = nil, limit: Int? = nil
    ) async throws -> [AlertJSON] {
        let rows = try await db.query("""
            SELECT \(unescaped: alertColumns), u.name
            FROM alerts a JOIN users u ON u.id = a.user_id LEFT JOIN alert_starts s ON s.alert_id = a.id
            WHERE (\(id)::BIGINT IS NULL OR a.id = \(id)) AND (\(ownerID)::BIGINT IS NULL OR a.user_id = \(ownerID))
              AND (\(symbol)::TEXT IS NULL OR a.symbol = \(symbol)) AND (\(state)::TEXT IS NULL OR \(unescaped: shownState) = \(state))
              AND (\(afterID)::BIGINT IS NULL OR a.id > \(afterID))
            ORDER BY a.id LIMIT \(limit.map(Int64.init))
            """, logger: logger)
        var alerts: [AlertJSON] = []
        for try await row in rows {
            let (record, user) = try alertRecord(row)
            alerts.append(AlertJSON(record, user: user))
        }
        return alerts
    }

    /// A row of `alertColumns` (then the user's name, when selected).
    static func alertRecord(_ row: PostgresRow) throws -> (AlertRecord, String) {
        let (id, userID, symbol, kind, value, percent, window, trigger, cooldown, margin, channels, state, note, created, expires, fired, start, snoozed, schedule, trailingFrom, user) =
            try row.decode((Int64, Int64, String, String, Double?, Double?, Int64?, String, Int64, Double, String, String, String?, Int64, Int64?, Int64?, Int64?, Int64?, String?, Double?, String).self)
        guard let kind = ConditionKind(rawValue: kind), let trigger = AlertTrigger(rawValue: trigger), let state = AlertState(rawValue: state) else {
            throw StockwatchError.internal("alert \(id) has an unreadable rule")
        }
        let record = AlertRecord(
            id: id, userId: userID, symbol: symbol, kind: kind, value: value, percent: percent, windowSeconds: window, trigger: trigger,
            cooldownSeconds: cooldown, rearmMarginPercent: margin, channels: try AlertRecord.channels(channels),
            state: state, note: note, createdAt: Date(milliseconds: created), expiresAt: expires.map(Date.init(milliseconds:)),
            lastFiredAt: fired.map(Date.init(milliseconds:)), startAt: start, snoozedUntil: snoozed.map(Date.init(milliseconds:)), schedule: schedule,
            trailingFrom: trailingFrom)
        return (record, user)
    }
}

/// One new alert as `addAlerts` sends it, inside a JSON array.
private struct NewAlertRow: Encodable {
    let n: Int
    let user_id: Int64
    let symbol: String
    let kind: String
    let value: Double?
    let percent: Double?
    let window_seconds: Int64?
    let trigger: String
    let cooldown_seconds: Int64
    let rearm_margin_percent: Double
    let channels: [String]
    let state: String
    let note: String?
    let expires_at: Int64?
    let schedule: String?
}

/// Holds `changeAlertState`'s decision for the length of its transaction only.
private final class DecisionBox: @unchecked Sendable {
    var decide: (@Sendable (AlertJSON) throws(StockwatchError) -> AlertState?)?
    init(_ decide: @escaping @Sendable (AlertJSON) throws(StockwatchError) -> AlertState?) { self.decide = decide }
}
