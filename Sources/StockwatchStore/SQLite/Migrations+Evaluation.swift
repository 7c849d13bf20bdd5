import Foundation

extension AppDatabase {
    /// v23: a `once` alert that fires ends (`fired`), and evaluate records that end as a
    /// row of `alert_ends` instead of writing the alert: at 1,000,000 alerts near the
    /// price, the ends of one tick (about 14,000 alerts spread over the table) were 10,000
    /// pages of `alerts` and 1,600 of its falling index, most of what a tick committed;
    /// here they are a few hundred pages of one narrow table (docs/benchmarks.md,
    /// twenty-eighth session). Readers show such an alert `fired` and count it inactive
    /// while its row still says armed or firing (`AlertRecord.endedAside`): any later
    /// write of its state outranks the row, so a paused or expired alert never reads as
    /// ended. `foldAlertEnds` writes the ends into the alerts after notify has sent
    /// (tick). No trigger deletes the row on such a write: one per state write cost 3% of
    /// a steady evaluate of 100,000 alerts.
    static let onceEndsMigration = """
        CREATE TABLE alert_ends (alert_id INTEGER PRIMARY KEY REFERENCES alerts(id) ON DELETE CASCADE);
        """

    /// v24: the watermarks keyed by symbol alone (`WITHOUT ROWID`). Every steady tick
    /// rewrites one row per symbol with new quotes; as a rowid table with its key in a
    /// second b-tree, each upsert found the row through both (at 50,000 symbols, a sixth
    /// of a near tick's writing). On eight alternate runs of one prepared near tick: CPU
    /// median 1.476 s before, 1.433 s after (docs/benchmarks.md, twenty-eighth session).
    static let progressWithoutRowidMigration = """
        CREATE TABLE evaluation_progress_new (
            symbol TEXT PRIMARY KEY,
            observed_at INTEGER NOT NULL,
            judged_price REAL
        ) WITHOUT ROWID;
        INSERT INTO evaluation_progress_new (symbol, observed_at, judged_price)
            SELECT symbol, observed_at, judged_price FROM evaluation_progress;
        DROP TABLE evaluation_progress;
        ALTER TABLE evaluation_progress_new RENAME TO evaluation_progress;
        """

    /// v25: a `rearm` alert that fires is kept firing as a row of `alert_firing` (its
    /// symbol beside it, for evaluate's read of a symbol's firing alerts) while its own
    /// row stays armed; it re-arms by losing that row. A state change wrote the alert's
    /// row and moved its entry in a seek index keyed by state: at 100,000 alerts, 3,333
    /// such changes in the first tick dirtied 805 pages of 1,390 that tick committed,
    /// 3,333 narrow rows 15 (docs/benchmarks.md, thirtieth session). Readers show the
    /// alert `firing` (`AlertRecord.firingAside`); a written `firing` (from before v25, or
    /// copied) is kept as written until it re-arms.
    static let firingAsideMigration = """
        CREATE TABLE alert_firing (alert_id INTEGER PRIMARY KEY REFERENCES alerts(id) ON DELETE CASCADE, symbol TEXT NOT NULL);
        """

    /// v26: the trailing rules' seek index holds the percent, which the seek's conditions
    /// test (`Evaluation.trailMoves` among them), and the trigger and round its filter
    /// tests: a trailing rule the prices neither move nor bring to its level is passed
    /// from its index entry and trail, without reading its row.
    static let trailingIndexWithPercentMigration = """
        DROP INDEX alerts_trailing;
        CREATE INDEX alerts_trailing ON alerts(symbol, kind, state, percent, trigger, start_round)
            WHERE kind IN ('trailing_fall', 'trailing_rise');
        """
}
