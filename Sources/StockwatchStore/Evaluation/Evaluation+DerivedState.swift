import Foundation

/// The derived level state in SQL, the same rule on both backends (SQLite's migration v19,
/// PostgreSQL's v13); `derivesState(_:)` and `levelHolds(_:price:)` are its Swift twins.
extension Evaluation {
    /// The alerts whose state evaluate derives rather than writes: a level (`above`,
    /// `below`) that re-arms at its level (`rearm`, no margin). Such an alert is `firing`
    /// exactly when the last price its symbol judged holds its rule, whatever came before,
    /// so while it is active its stored state stays `armed` and readers derive the rest
    /// (`shownStateSQL`). A stored `firing` (one from before the migration, or copied) is
    /// kept as written until the alert re-arms. `column`: a column's name as the statement
    /// spells it (`"a.kind"`, or plain for an index's WHERE).
    static func derivesStateSQL(_ column: (String) -> String = { $0 }) -> String {
        "\(column("kind")) IN ('above', 'below') AND \(column("trigger")) = 'rearm' AND \(column("rearm_margin_percent")) = 0"
    }

    /// The derived alerts whose stored state is `armed`: those of `alerts_levels`, and not
    /// of `alerts_rising` or `alerts_falling`.
    static func derivedArmedSQL(_ column: (String) -> String = { $0 }) -> String {
        "\(derivesStateSQL(column)) AND \(column("state")) = 'armed'"
    }

    /// An alert's state as readers show it: a derived alert stored `armed` that has started
    /// is `firing` when its symbol's last judged price (`evaluation_progress.judged_price`)
    /// holds its rule; every other alert's is stored. `alert`: the alert's table or alias;
    /// `started`: the backend's test that it has started (judged its first quote).
    static func shownStateSQL(of alert: String, started: String) -> String {
        """
        CASE WHEN \(derivedArmedSQL { "\(alert).\($0)" }) AND \(started)
            AND (SELECT CASE WHEN \(alert).kind = 'above' THEN p.judged_price >= \(alert).value ELSE p.judged_price <= \(alert).value END
                 FROM evaluation_progress p WHERE p.symbol = \(alert).symbol)
        THEN 'firing' ELSE \(alert).state END
        """
    }
}
