import Foundation

extension AppDatabase {
    /// v22: `deliveries_due` holds the deliveries that wait (pending, retry), not every
    /// delivery ever made. Keyed by status, each claim moved an entry to 'sending' and
    /// each outcome to 'sent', in an index that grew with the whole history; now a claim
    /// only deletes one entry and a sent outcome touches none (notify's store thread: a
    /// quarter less CPU, docs/benchmarks.md, twenty-seventh session). `status`'s counts
    /// of the ended ones come from `deliveries_ended` (failed and dead, rare) and the
    /// rest is sent (`deliveryHealth`).
    static let deliveriesDueMigration = """
        DROP INDEX deliveries_due;
        CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at) WHERE \(waitingSQL);
        CREATE INDEX deliveries_ended ON deliveries(status, updated_at) WHERE \(endedSQL);
        """

    /// The partial indexes' conditions, written the same in every query that uses them:
    /// SQLite uses a partial index only for a query whose WHERE states its condition.
    static let waitingSQL = "status IN ('pending', 'retry')"
    static let endedSQL = "status IN ('failed', 'dead')"
}
