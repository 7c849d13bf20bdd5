import Foundation
import GRDB
import StockwatchModel

/// What readers compute of an alert rather than read (migrations v18 and v19): its state,
/// when it is a derived level, and its last firing. Every reader of an alert's state
/// selects these (`AlertRecord.databaseSelection`, the state filter, `db copy`).
extension AlertRecord {
    /// An alert's state as readers show it (`Evaluation.shownStateSQL`): a derived level
    /// has started once evaluate has judged through its start round (migration v15).
    static func state(of alert: String) -> String {
        Evaluation.shownStateSQL(of: alert, started: "\(alert).start_round <= (SELECT judged_through FROM evaluation_starts)")
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
