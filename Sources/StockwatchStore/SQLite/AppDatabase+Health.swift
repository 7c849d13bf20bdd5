import Foundation
import GRDB
import StockwatchModel

/// What `status` reports of the store: the deliveries by status, the recent failed
/// attempts, the newest quotes of the watched symbols, and the file's size.
extension AppDatabase: HealthStore {
    public func deliveryHealth(overdueBefore: Date, deadSince: Date) throws(StockwatchError) -> StatusReport.Deliveries {
        try read { db in
            var health = StatusReport.Deliveries()
            // Each status from its partial index, and the rest sent: a count of the sent
            // would scan the table (its index holds only those that wait).
            let counts = try Row.fetchAll(db, sql: """
                SELECT status, count(*) AS n FROM deliveries INDEXED BY deliveries_due WHERE \(Self.waitingSQL) GROUP BY status
                UNION ALL SELECT 'sending', count(*) FROM deliveries INDEXED BY deliveries_leased WHERE status = 'sending'
                UNION ALL SELECT status, count(*) FROM deliveries INDEXED BY deliveries_ended WHERE \(Self.endedSQL) GROUP BY status
                UNION ALL SELECT 'all', count(*) FROM deliveries
                """)
            var sent = 0
            for row in counts {
                let (status, n): (String, Int) = (row["status"], row["n"])
                if status == "all" { sent += n } else if n > 0 { health.counts[status] = n; sent -= n }
            }
            if sent > 0 { health.counts["sent"] = sent }
            health.overdue = try Int.fetchOne(
                db, sql: """
                    SELECT (SELECT count(*) FROM deliveries WHERE \(Self.waitingSQL) AND next_attempt_at < :limit)
                         + (SELECT count(*) FROM deliveries WHERE status = 'sending' AND lease_until < :limit)
                    """, arguments: ["limit": overdueBefore.milliseconds]) ?? 0
            health.recentlyDead = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM deliveries WHERE \(Self.endedSQL) AND status = 'dead' AND updated_at >= ?",
                arguments: [deadSince.milliseconds]) ?? 0
            return health
        }
    }

    public func recentFailedAttempts(limit: Int) throws(StockwatchError) -> [StatusReport.AttemptError] {
        try read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT a.delivery_id, d.channel, a.attempt, a.finished_at, a.outcome, a.error FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
                    WHERE a.outcome <> 'sent' ORDER BY a.id DESC LIMIT ?
                    """, arguments: [limit]
            ).map {
                StatusReport.AttemptError(deliveryId: $0["delivery_id"], channel: $0["channel"], attempt: $0["attempt"], at: Date(milliseconds: $0["finished_at"]), outcome: $0["outcome"], error: $0["error"])
            }
        }
    }

    public func newestObservedAt(symbols: [String]) throws(StockwatchError) -> [String: Date] {
        try read { db in
            var newest: [String: Date] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT symbol, max(observed_at) AS newest FROM quotes WHERE symbol IN (SELECT value FROM json_each(?)) GROUP BY symbol",
                arguments: [JSONOutput.encode(symbols)]) {
                newest[row["symbol"]] = Date(milliseconds: row["newest"])
            }
            return newest
        }
    }
}

extension AppDatabase {
    public func storageBytes() throws(StockwatchError) -> Int64 {
        func size(_ path: String) -> Int64 { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0 }
        return size(path) + size(path + "-wal")
    }
}
