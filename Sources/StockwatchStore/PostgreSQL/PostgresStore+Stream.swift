import Foundation
import PostgresNIO
import StockwatchModel

/// What serve streams, in commit order. Ids are drawn in one order and committed in
/// another (a transaction holding id 100 may commit after one holding 101), so a reader
/// that moves past the highest id it has seen can miss a row for good. Instead every
/// transaction that stores quotes or notifications ends by logging their ids in
/// `stream_log` under an advisory lock it holds until it commits: a log entry's number is
/// drawn only after every earlier entry committed (or rolled back), so a reader that has
/// seen entry N has seen everything logged before it. The commit's NOTIFY wakes every
/// serve instance.
extension PostgresStore: StreamStore {
    static let streamChannel = "stockwatch_stream"
    /// The stream log's lock: the evaluate buckets' first key, a second key no bucket has.
    static let streamLock: Int32 = 1_000
    /// Log entries older than this are deleted by fetch; a serve instance that lost its
    /// database for longer misses what they held (docs/scale-out.md).
    static let streamLogRetention: Int64 = 86_400_000

    /// Inside a writing transaction, as its last statement: the lock is held until commit.
    static func logForStream(_ db: PostgresConnection, quotes: [Int64] = [], notifications: [Int64] = [], stateChanges: [Int64] = [], now: Date) async throws {
        guard !quotes.isEmpty || !notifications.isEmpty || !stateChanges.isEmpty else { return }
        try await db.execute("SELECT pg_advisory_xact_lock(\(evaluateLockClass), \(streamLock))")
        // The payload is the entry's number only (far under NOTIFY's 8,000 bytes).
        try await db.execute("""
            WITH entry AS (
                INSERT INTO stream_log (quote_ids, notification_ids, state_change_ids, committed_at)
                VALUES (\(quotes)::BIGINT[], \(notifications)::BIGINT[], \(stateChanges)::BIGINT[], \(now.milliseconds)) RETURNING seq)
            SELECT pg_notify(\(streamChannel), seq::TEXT) FROM entry
            """)
    }

    static func pruneStreamLog(_ db: PostgresConnection, now: Date) async throws {
        try await db.execute("DELETE FROM stream_log WHERE committed_at < \(now.milliseconds - streamLogRetention)")
        try await db.execute("DELETE FROM notification_state_changes WHERE changed_at < \(now.milliseconds - streamLogRetention)")
    }

    public func streamStart() throws(StockwatchError) -> StreamPosition {
        try read { db in .commit(try await db.value("SELECT COALESCE(max(seq), 0)::BIGINT FROM stream_log", Int64.self) ?? 0) }
    }

    public func streamBatch(after position: StreamPosition, limit: Int) throws(StockwatchError) -> StreamBatch {
        guard case .commit(let after) = position else { return StreamBatch(position: try streamStart()) }
        return try read { db in
            let entries = try await db.rows("""
                SELECT seq, quote_ids, notification_ids, state_change_ids FROM stream_log WHERE seq > \(after) ORDER BY seq LIMIT 1000
                """, (Int64, [Int64], [Int64], [Int64]).self)
            var batch = StreamBatch(position: position)
            var quoteIDs: [Int64] = [], notificationIDs: [Int64] = [], changeIDs: [Int64] = []
            for (seq, quotes, notifications, changes) in entries {
                // A whole entry at least, then only while under the limit.
                let taken = quoteIDs.count + notificationIDs.count + changeIDs.count
                if taken > 0, taken + quotes.count + notifications.count + changes.count > limit {
                    batch.more = true
                    break
                }
                quoteIDs += quotes
                notificationIDs += notifications
                changeIDs += changes
                batch.position = .commit(seq)
            }
            if entries.count == 1000 { batch.more = true }
            if !quoteIDs.isEmpty {
                batch.quotes = try await db.rows("""
                    SELECT symbol, price, provider, observed_at FROM quotes WHERE id = ANY(\(quoteIDs)) ORDER BY id
                    """, (String, Double, String, Int64).self
                ).map { QuoteJSON(symbol: $0.0, price: $0.1, provider: $0.2, observedAt: Date(milliseconds: $0.3)) }
            }
            if !notificationIDs.isEmpty {
                let rows = try await db.rows("""
                    SELECT n.id, n.alert_id, n.user_id, u.name, n.symbol, n.price, n.observed_at, n.message, n.created_at, n.state, n.state_changed_at, n.state_device_id
                    FROM notifications n JOIN users u ON u.id = n.user_id
                    WHERE n.id = ANY(\(notificationIDs)) ORDER BY n.id
                    """, NotificationColumns.self)
                batch.notifications = try await Self.json(rows, db)
            }
            if !changeIDs.isEmpty {
                batch.stateChanges = try await db.rows("""
                    SELECT user_id, state, notification_ids FROM notification_state_changes WHERE id = ANY(\(changeIDs)) ORDER BY id
                    """, (Int64, String, [Int64]).self
                ).map { NotificationStateChange(userID: $0.0, ids: $0.2, state: NotificationState(rawValue: $0.1) ?? .read) }
            }
            return batch
        }
    }

    public func watchStream(_ wake: @escaping @Sendable () -> Void) async throws(StockwatchError) -> (any StoreWatch)? {
        try await listen(on: Self.streamChannel, wake)
    }
}
