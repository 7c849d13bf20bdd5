import Foundation
import GRDB

extension AppDatabase {
    /// v15: an alert's first judgement writes nothing to it. Each start (add, import,
    /// resume) takes a round number above every round evaluate has judged through
    /// (`evaluation_starts`); evaluate judges the alerts of later rounds from their own
    /// `start_at`, then moves the one counter past them. Clearing `start_at` on each
    /// started alert rewrote every new alert's row: 1,000,000 of them took 2.35 s as one
    /// statement and 3.16 s row by row (a copy of Benchmarks/evaluate's database). Rows
    /// that were starters take round 1 and the counter starts at 0, so they still start.
    /// `last_alert_id`: the highest alert id when evaluate last passed the rounds; every
    /// alert above it is new since, which the seeks of the others test in their index
    /// before reading the row (1,000,000 new alerts: 0.19 s less per seek).
    /// The index holds each start with its symbol, so that the symbols with new alerts
    /// and where their quotes begin are read from it alone, without a sort.
    static let startRoundsMigration = """
        ALTER TABLE alerts ADD COLUMN start_round INTEGER NOT NULL DEFAULT 0 CHECK (start_round >= 0);
        UPDATE alerts SET start_round = 1 WHERE start_at IS NOT NULL;
        DROP INDEX alerts_starting;
        CREATE INDEX alerts_starting ON alerts(start_round, symbol, start_at);
        CREATE TABLE evaluation_starts (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            judged_through INTEGER NOT NULL CHECK (judged_through >= 0),
            last_alert_id INTEGER NOT NULL CHECK (last_alert_id >= 0)
        );
        INSERT INTO evaluation_starts (id, judged_through, last_alert_id) VALUES (1, 0, (SELECT COALESCE(max(id), 0) FROM alerts));
        """

    /// The round of an alert that starts now: above every round of a stored alert and
    /// every round evaluate has judged through (an alert of the highest round may be gone).
    static let nextStartRoundSQL = """
        SELECT max(COALESCE((SELECT max(start_round) FROM alerts), 0), (SELECT judged_through FROM evaluation_starts)) + 1
        """
}
