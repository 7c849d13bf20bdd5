import Dispatch
import Foundation
import PostgresNIO
import StockwatchModel

/// `DataStore.runLock` on PostgreSQL: session-level advisory locks, keyed by the lock's name.
extension PostgresStore {
    /// Holds a session-level advisory lock until released: `tick`'s lock, since a URL has
    /// no file beside it. A session store takes it on its own session; a pooled one on a
    /// connection of its own. The server releases it when the process dies (its
    /// connection closes), so a killed tick never leaves it held.
    public func runLock(name: String, holder: String) throws(StockwatchError) -> any RunLease {
        let server = server, eventLoop = executor.eventLoop, key = PostgresStore.lockKey(name)
        let refusal = StockwatchError.temporary(
            "another \(holder) is still running (it holds the advisory lock '\(name)' on \(server.description)); this one did nothing")
        if case .session = source {
            guard try read({ connection in try await connection.value("SELECT pg_try_advisory_lock(\(key))", Bool.self) ?? false }) else {
                throw refusal
            }
            return SessionRunLock(store: self, key: key)
        }
        return try run { () async throws(StockwatchError) -> PostgresRunLock in
            // On this store's loop: the caller's thread is blocked until it is open.
            let connection = try await PostgresDatabase.connect(server, on: eventLoop)
            let taken: Bool
            do {
                taken = try await connection.value("SELECT pg_try_advisory_lock(\(key))", Bool.self) ?? false
            } catch {
                try? await connection.close()
                throw PostgresDatabase.describe(error, at: server)
            }
            guard taken else {
                try? await connection.close()
                throw refusal
            }
            return PostgresRunLock(connection: connection, key: key)
        }
    }

    /// A stable 64-bit key for a lock's name (FNV-1a), the same in every process.
    static func lockKey(_ name: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in ("stockwatch:" + name).utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }
}

/// A run lock held by the store's own session: released by unlocking (the session goes
/// on), or by the server when the process dies.
final class SessionRunLock: RunLease, Sendable {
    let store: PostgresStore
    let key: Int64
    init(store: PostgresStore, key: Int64) {
        self.store = store
        self.key = key
    }

    func release() {
        let key = key
        _ = try? store.read { connection in try await connection.execute("SELECT pg_advisory_unlock(\(key))") }
    }
}

final class PostgresRunLock: RunLease, Sendable {
    let connection: PostgresConnection
    let key: Int64
    init(connection: PostgresConnection, key: Int64) {
        self.connection = connection
        self.key = key
    }
    /// Unlocks, then closes the session. Closing alone would release the lock only when
    /// the server's backend notices and exits, a moment after: a claim right after this
    /// returned could still find it held. Waits on a semaphore: the caller may be on an
    /// event loop, where NIO forbids `wait()`.
    func release() {
        let done = DispatchSemaphore(value: 0)
        let connection = connection, key = key
        Task {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(key))", logger: PostgresDatabase.logger)
            try? await connection.close()
            done.signal()
        }
        done.wait()
    }
}
