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
    static let startRoundsMigration = """
        ALTER TABLE alerts ADD COLUMN start_round INTEGER NOT NULL DEFAULT 0 CHECK (start_round >= 0);
        UPDATE alerts SET start_round = 1 WHERE start_at IS NOT NULL;
        DROP INDEX alerts_starting;
        CREATE INDEX alerts_starting ON alerts(start_round);
        CREATE TABLE evaluation_starts (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            judged_through INTEGER NOT NULL CHECK (judged_through >= 0)
        );
        INSERT INTO evaluation_starts (id, judged_through) VALUES (1, 0);
        """

    /// The round of an alert that starts now: above every round of a stored alert and
    /// every round evaluate has judged through (an alert of the highest round may be gone).
    static let nextStartRoundSQL = """
        SELECT max(COALESCE((SELECT max(start_round) FROM alerts), 0), (SELECT judged_through FROM evaluation_starts)) + 1
        """
}
