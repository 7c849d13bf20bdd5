import Foundation
import GRDB

extension AppDatabase {
    /// v18: evaluate stops writing an alert's last firing: its newest notification says
    /// when (`AlertRecord.lastFiredAt`), found in one seek here. A firing that changes no
    /// state then writes nothing to its alert (docs/architecture.md).
    static let lastFiringMigration = "CREATE INDEX notifications_alert_observed ON notifications(alert_id, observed_at)"

    /// v19: a level that re-arms at its level is firing exactly when its symbol's last
    /// judged price holds it: evaluate keeps that price beside the watermark and no longer
    /// writes such an alert's state (`Evaluation.derivesStateSQL`). Stored `armed`, they
    /// leave the state-keyed seek indexes for one of their own, keyed by level alone: a
    /// move of the price changes none of their index entries.
    static let levelStatesMigration = """
        ALTER TABLE evaluation_progress ADD COLUMN judged_price REAL;
        DROP INDEX alerts_rising;
        DROP INDEX alerts_falling;
        CREATE INDEX alerts_rising ON alerts(symbol, state, value) WHERE kind IN ('above', 'crosses_above') AND NOT (\(Evaluation.derivedArmedSQL()));
        CREATE INDEX alerts_falling ON alerts(symbol, state, value) WHERE kind IN ('below', 'crosses_below') AND NOT (\(Evaluation.derivedArmedSQL()));
        CREATE INDEX alerts_levels ON alerts(symbol, kind, value) WHERE \(Evaluation.derivedArmedSQL());
        """
}
