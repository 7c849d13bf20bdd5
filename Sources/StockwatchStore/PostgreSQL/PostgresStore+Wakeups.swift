import Foundation
import PostgresNIO
import StockwatchModel

/// Wake-ups between processes: LISTEN/NOTIFY. A signal carries no rows (its payload is
/// empty), only the news that a transaction committed some: the tables stay the one source
/// of truth, and a listener that missed signals while its connection was down catches up
/// by reading them.
extension PostgresStore {
    /// The channel evaluate signals on when it commits new deliveries.
    static let deliveriesChannel = "stockwatch_deliveries"

    /// Inside a transaction: the listeners hear it when (and only if) it commits.
    static func signalDeliveries(_ db: PostgresConnection) async throws {
        try await db.execute("SELECT pg_notify(\(deliveriesChannel), '')")
    }

    public func nextDeliveryDue() throws(StockwatchError) -> Date? {
        try read { db in
            try await db.value("""
                SELECT min(due) FROM (
                    SELECT min(next_attempt_at) AS due FROM deliveries WHERE status = 'pending'
                    UNION ALL SELECT min(next_attempt_at) FROM deliveries WHERE status = 'retry'
                    UNION ALL SELECT min(lease_until) FROM deliveries WHERE status = 'sending') AS x
                """, Int64?.self) ?? nil
        }.map(Date.init(milliseconds:))
    }

    /// A connection of its own listens (the session runs the passes' transactions).
    public func watchDeliveries(_ wake: @escaping @Sendable () -> Void) async throws(StockwatchError) -> (any StoreWatch)? {
        try await listen(on: Self.deliveriesChannel, wake)
    }

    /// Listens on `channel` on a connection of its own until stopped. It is listening when
    /// this returns; after it drops, it reconnects every second and calls `wake` once
    /// listening again, for what was committed meanwhile.
    func listen(on channel: String, _ wake: @escaping @Sendable () -> Void) async throws(StockwatchError) -> any StoreWatch {
        let server = server, eventLoop = executor.eventLoop
        let (started, starting) = AsyncStream<StockwatchError?>.makeStream()
        let task = Task(executorPreference: executor) {
            var first = true
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresDatabase.connect(server, on: eventLoop)
                    do {
                        try await connection.listen(on: channel) { notifications in
                            if first {
                                first = false
                                starting.yield(nil)
                            } else {
                                wake()
                            }
                            for try await _ in notifications { wake() }
                        }
                    } catch {
                        if !Task.isCancelled { Self.logger.debug("listening on \(channel) stopped: \(error)") }
                    }
                    try? await connection.close()
                } catch {
                    if first {
                        starting.yield(PostgresDatabase.describe(error, at: server))
                        return
                    }
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        for await failure in started {
            if let failure {
                task.cancel()
                throw failure
            }
            break
        }
        return PostgresWatch(task: task)
    }
}

final class PostgresWatch: StoreWatch {
    let task: Task<Void, Never>
    init(task: Task<Void, Never>) { self.task = task }
    func stop() { task.cancel() }
}
