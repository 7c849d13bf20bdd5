import Foundation
import GRDB
import StockwatchModel

/// What readers compute of an alert rather than read (migrations v18 and v19): its state,
/// when it is a derived level, and its last firing. Every reader of an alert's state
/// selects these (`AlertRecord.databaseSelection`, the state filter, `db copy`), and
/// evaluate's seeks spell its indexes' WHERE with them.
extension AlertRecord {
    /// The alerts whose state evaluate derives rather than writes (migration v19): a level
    /// (`above`, `below`) that re-arms at its level (`rearm`, no margin). Such an alert is
    /// `firing` exactly when the last price its symbol judged holds its rule, whatever came
    /// before, so while it is active its stored state stays `armed` and readers derive
    /// the rest (`state(of:)`). A stored `firing` (one from before v19, or copied) is kept
    /// as written until the alert re-arms. `column`: a column's name as the statement
    /// spells it (`"a.kind"`, or plain for an index's WHERE).
    static func derivesState(_ column: (String) -> String = { $0 }) -> String {
        "\(column("kind")) IN ('above', 'below') AND \(column("trigger")) = 'rearm' AND \(column("rearm_margin_percent")) = 0"
    }

    /// The derived alerts whose stored state is `armed`: those of `alerts_levels`, and not
    /// of `alerts_rising` or `alerts_falling`.
    static func derivedArmed(_ column: (String) -> String = { $0 }) -> String {
        "\(derivesState(column)) AND \(column("state")) = 'armed'"
    }

    /// An alert's state as readers show it: a derived alert (`derivesState`) that has
    /// started and is stored `armed` is `firing` when its symbol's last judged price
    /// (`evaluation_progress.judged_price`) holds its rule; every other alert's is stored.
    static func state(of alert: String) -> String {
        """
        CASE WHEN \(derivedArmed { "\(alert).\($0)" })
            AND \(alert).start_round <= (SELECT judged_through FROM evaluation_starts)
            AND (SELECT iif(\(alert).kind = 'above', p.judged_price >= \(alert).value, p.judged_price <= \(alert).value)
                 FROM evaluation_progress p WHERE p.symbol = \(alert).symbol)
        THEN 'firing' ELSE \(alert).state END
        """
    }

    /// An alert's last firing: the observed time of its newest notification, or the stored
    /// `last_fired_at` when that is newer (one written before migration v18, or copied
    /// from such a store; import ignores the field). Evaluate writes nothing to an alert
    /// that fires: its notification says when. One seek in `notifications_alert_observed`,
    /// made once per row (a NULL stored value, most alerts', is not compared).
    static func lastFiredAt(of alert: String) -> String {
        let newest = "(SELECT max(n.observed_at) FROM notifications n WHERE n.alert_id = \(alert).id)"
        return "iif(\(alert).last_fired_at IS NULL, \(newest), max(\(alert).last_fired_at, coalesce(\(newest), 0)))"
    }
}
