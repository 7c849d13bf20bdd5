import Foundation
import GRDB
import StockwatchModel

/// Finding the alerts that may change: the partial-index seeks and the new alerts.
extension Evaluation {
    static let columns = """
        a.id, a.user_id, a.symbol, a.kind, a.value, a.percent, a.window_seconds, a.trigger, a.cooldown_seconds,
        a.rearm_margin_percent, a.state, a.last_fired_at, a.channels, a.start_at
        """

    /// Alerts that follow their symbol's watermark and whose rule the new price range could
    /// fire or re-arm (see `slack`), then all new and resumed alerts.
    mutating func readCandidates(_ db: Database) throws {
        guard prefilter else {
            try readAlerts(db, """
                SELECT \(Self.columns) FROM temp.evaluate_batch b CROSS JOIN alerts a ON a.symbol = b.symbol
                WHERE a.state IN ('armed', 'firing') AND a.start_at IS NULL
                """)
            try readStarters(db)
            return
        }
        let s = Self.slack
        // Each part seeks one partial index per symbol (or window) with new prices: armed
        // alerts by the level range the prices reached, firing ones to test re-arming.
        let rising = "temp.evaluate_batch b CROSS JOIN alerts a INDEXED BY alerts_rising ON a.symbol = b.symbol AND a.kind IN ('above', 'crosses_above')"
        let falling = "temp.evaluate_batch b CROSS JOIN alerts a INDEXED BY alerts_falling ON a.symbol = b.symbol AND a.kind IN ('below', 'crosses_below')"
        let changes = """
            temp.evaluate_references r JOIN temp.evaluate_batch b ON b.symbol = r.symbol
            CROSS JOIN alerts a INDEXED BY alerts_changes ON a.symbol = r.symbol AND a.window_seconds IS NOT NULL
            """
        try readAlerts(db, """
            SELECT \(Self.columns) FROM \(rising) WHERE a.state = 'armed' AND a.value <= b.high * (1 + \(s)) AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(rising) WHERE a.state = 'firing'
                AND b.low < a.value * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s)) AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(falling) WHERE a.state = 'armed' AND a.value >= b.low * (1 - \(s)) AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(falling) WHERE a.state = 'firing'
                AND b.high > a.value * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s)) AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(changes) WHERE a.kind = 'rise' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (b.high / (r.low * (1 - \(s))) - 1) * 100 END AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(changes) WHERE a.kind = 'rise' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.low < r.high * (1 + a.percent / 100.0) * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s)))
                AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(changes) WHERE a.kind = 'fall' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (1 - b.low / (r.high * (1 + \(s)))) * 100 END AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(changes) WHERE a.kind = 'fall' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.high > r.low * (1 - a.percent / 100.0) * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s)))
                AND a.start_at IS NULL
            """)
        try readStarters(db)
    }

    /// New and resumed alerts, judged from their own start; few at any time.
    mutating func readStarters(_ db: Database) throws {
        try readAlerts(db, "SELECT \(Self.columns) FROM alerts a WHERE a.start_at IS NOT NULL AND a.state IN ('armed', 'firing')")
    }

    mutating func readAlerts(_ db: Database, _ sql: String) throws {
        let rows = try RawStatement(db, sql)
        while try rows.step() {
            let id = rows.int64(0)
            guard let kind = ConditionKind(rawValue: rows.string(3)),
                let condition = Condition(kind: kind, value: rows.optionalDouble(4), percent: rows.optionalDouble(5), windowSeconds: rows.optionalInt64(6)),
                let trigger = AlertTrigger(rawValue: rows.string(7)),
                let state = AlertState(rawValue: rows.string(10))
            else { throw StockwatchError.internal("alert \(id) has an unreadable rule") }
            let machine = AlertMachine(
                condition: condition, trigger: trigger, cooldownSeconds: rows.int64(8), rearmMarginPercent: rows.double(9),
                state: state, lastFiredAt: rows.optionalInt64(11))
            candidates.append(Candidate(
                id: id, userId: rows.int64(1), symbol: rows.string(2), channels: rows.string(12), startAt: rows.optionalInt64(13).map { $0 == 0 ? staleBefore : $0 },
                initial: machine, machine: machine))
        }
    }
}
