import Foundation
import GRDB
import StockwatchModel

/// What readers compute of an alert rather than read (migrations v18, v19, v23 and v25):
/// its state, when it is a derived level, an ended `once` alert or a `rearm` alert firing
/// aside, and its last firing. Every
/// reader of an alert's state selects these (`AlertRecord.databaseSelection`, the state
/// filter, `db copy`), and every test of an active alert is `isActive`.
extension AlertRecord {
    /// An alert's state as readers show it (`Evaluation.shownStateSQL`): a derived level
    /// has started once evaluate has judged through its start round (migration v15).
    /// A `once` alert whose end evaluate kept aside (migration v23) is `fired`; a `rearm`
    /// alert whose firing it kept aside (v25) is `firing`.
    static func state(of alert: String) -> String {
        let shown = Evaluation.shownStateSQL(of: alert, started: "\(alert).start_round <= (SELECT judged_through FROM evaluation_starts)")
        return "CASE WHEN \(endedAside(alert)) THEN 'fired' WHEN \(firingAside(alert)) THEN 'firing' ELSE \(shown) END"
    }

    /// A `rearm` alert that fired while its row still says armed: its firing is a row of
    /// `alert_firing` (migration v25), which evaluate deletes when it re-arms and any
    /// write of another state deletes with it. Tested on the trigger and state first:
    /// other alerts never probe.
    static func firingAside(_ alert: String) -> String {
        "(\(alert).trigger = 'rearm' AND \(alert).state = 'armed' AND EXISTS (SELECT 1 FROM alert_firing f WHERE f.alert_id = \(alert).id))"
    }

    /// A `once` alert that has fired while its row still says armed (or firing): its end
    /// is a row of `alert_ends` (migration v23), which a later write of another state
    /// outranks. Tested on the trigger first: other alerts never probe.
    static func endedAside(_ alert: String) -> String {
        """
        (\(alert).trigger = 'once' AND \(alert).state IN ('armed', 'firing')
         AND EXISTS (SELECT 1 FROM alert_ends e WHERE e.alert_id = \(alert).id))
        """
    }

    /// An alert evaluate still judges: armed or firing, and not ended aside.
    static func isActive(_ alert: String) -> String {
        "\(alert).state IN ('armed', 'firing') AND NOT \(endedAside(alert))"
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
