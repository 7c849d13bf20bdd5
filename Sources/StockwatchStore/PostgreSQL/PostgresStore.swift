import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import StockwatchModel
// postgres-nio's connection pool, the one its `PostgresClient` runs: see `KeptAlivePool`.
import _ConnectionPoolModule

/// Every storage protocol on PostgreSQL. Each method is one transaction on the command's
/// session or on a connection of `serve`'s pool; every value is bound, never spliced into
/// the SQL.
///
/// The protocols are synchronous (GRDB's model: serve already runs them on its database
/// threads, the CLI on its one task), so each method runs its async body on this store's
/// own event loop, as a task preferring that loop as its executor, and waits. The body
/// therefore never needs a thread of the concurrency pool the caller may be blocking, and
/// every connection it opens lives on that loop too (the CLI runs Swift concurrency on
/// NIO's shared loops: a connection there could wait for the very thread that waits for it).
public final class PostgresStore: DataStore, Sendable {
    /// How a store reaches the server. A command (cron's fetch, evaluate, notify, tick)
    /// runs one step after another: one session serves it all, tick's lock included, so it
    /// pays for one connection and one authentication. `serve` answers many clients at
    /// once from a pool.
    public enum Connections: Sendable {
        case session
        case pool(maximum: Int)
    }

    enum Source: Sendable {
        case session(PostgresConnection)
        case pool(KeptAlivePool)
    }

    /// serve's pool: postgres-nio's own pool (what `PostgresClient` runs), its connections
    /// opened by `PostgresDatabase.connect`, with TCP keepalives like every other
    /// connection. `PostgresClient` opens its connections itself and takes no socket
    /// options: a query of serve's waited for about 15 minutes when the network dropped
    /// every packet. (An underscored module of postgres-nio, public for this use.)
    typealias KeptAlivePool = ConnectionPool<
        PostgresConnection, PostgresConnection.ID, _ConnectionPoolModule.ConnectionIDGenerator,
        ConnectionRequest<PostgresConnection>, ConnectionRequest<PostgresConnection>.ID,
        NoOpKeepAliveBehavior<PostgresConnection>, NoOpConnectionPoolMetrics<PostgresConnection.ID>, ContinuousClock
    >

    public let server: PostgresLocation
    let source: Source
    let executor: EventLoopTaskExecutor
    /// A session runs one caller's statements at a time: a transaction must not interleave
    /// with another's (notify records outcomes while its sends run).
    let sessionTurn = SessionTurn()
    let sessionClosed = SessionClosed()
    public var location: String { server.description }

    static let logger = PostgresDatabase.logger

    /// Checks the server and the schema first, over a connection opened directly: a pool
    /// retries an unreachable server without end, and the user must hear at once that the
    /// server is down (exit 69) or the schema is old (exit 78, run `db migrate`). A session
    /// keeps that connection.
    public init(_ server: PostgresLocation, connections: Connections = .session) throws(StockwatchError) {
        self.server = server
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        executor = EventLoopTaskExecutor(group.next())
        let eventLoop = executor.eventLoop
        let checked = try Self.wait(on: executor) { () async throws(StockwatchError) -> PostgresConnection in
            let connection = try await PostgresDatabase.connect(server, on: eventLoop)
            do throws(StockwatchError) {
                try await PostgresDatabase.requireCurrentSchema(on: connection, at: server)
            } catch {
                try? await connection.close()
                throw error
            }
            return connection
        }
        guard case let .pool(maximum) = connections else {
            source = .session(checked)
            checked.closeFuture.whenComplete { [sessionClosed] _ in sessionClosed.close() }
            return
        }
        checked.close().whenComplete { _ in _ = checked }  // keeps it until closed
        var configuration = ConnectionPoolConfiguration()
        configuration.maximumConnectionSoftLimit = maximum
        configuration.maximumConnectionHardLimit = maximum
        let pool = KeptAlivePool(
            configuration: configuration, keepAliveBehavior: NoOpKeepAliveBehavior(connectionType: PostgresConnection.self),
            observabilityDelegate: NoOpConnectionPoolMetrics(connectionIDType: PostgresConnection.ID.self)
        ) { id, _ in
            ConnectionAndMetadata(connection: try await PostgresDatabase.connect(server, on: eventLoop, id: id), maximalStreamsOnConnection: 1)
        }
        source = .pool(pool)
        Task(executorPreference: executor) { await pool.run() }
    }

    deinit {
        if case let .session(connection) = source { connection.close().whenComplete { _ in _ = connection } }
    }

    /// Runs `body` on this store's event loop and waits for it (see the type's comment).
    func run<T: Sendable>(_ body: @escaping @Sendable () async throws(StockwatchError) -> T) throws(StockwatchError) -> T {
        try Self.wait(on: executor, body)
    }

    private static func wait<T: Sendable>(
        on executor: EventLoopTaskExecutor, _ body: @escaping @Sendable () async throws(StockwatchError) -> T
    ) throws(StockwatchError) -> T {
        precondition(!executor.eventLoop.inEventLoop, "a PostgresStore method was called on its own event loop")
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            do throws(StockwatchError) { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }

    /// One transaction (READ COMMITTED, as PostgreSQL's default). A deadlock, a
    /// serialization failure or a lock timeout is retried twice, then exit 75.
    ///
    /// It runs on this store's loop even when an async caller (notify's store steps)
    /// calls it: its continuations must never wait for a thread of the caller's pool,
    /// which a synchronous store call from another task may be blocking while it waits
    /// for this transaction's session turn (a notify --follow hung so: a send reading
    /// the FCM access token blocked the thread an outcome write needed to finish).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(StockwatchError) -> T {
        try await withTaskExecutorPreference(executor) { () async throws(StockwatchError) -> T in
            try await self.transactionHere(body)
        }
    }

    private func transactionHere<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(StockwatchError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withConnection { connection in
                    try await connection.withTransaction(logger: Self.logger) { connection in try await body(connection) }
                }
            } catch {
                // The transaction wraps what failed: our own error, or the server's.
                let cause = (error as? PostgresTransactionError).flatMap { $0.closureError ?? $0.beginError ?? $0.commitError } ?? error
                if attempt < 3, let failure = cause as? PSQLError, Self.isRetryable(failure) { continue }
                throw describe(cause)
            }
        }
    }

    /// The session, once the caller's turn has come; or a connection of the pool.
    private func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        switch source {
        case let .pool(pool):
            return try await pool.withConnection { connection in try await body(connection) }
        case let .session(connection):
            await sessionTurn.acquire()
            do {
                let result = try await untilClosed(connection) { try await body(connection) }
                await sessionTurn.release()
                return result
            } catch {
                await sessionTurn.release()
                throw error
            }
        }
    }

    /// `body`'s result, or `unavailable` as soon as the connection closes: postgres-nio
    /// drops a statement written to a closed connection without failing it, so a session
    /// whose server restarted would wait forever (a notify --follow hung so after a
    /// `pg_ctlcluster restart`). A session is not reconnected: tick's lock went with it.
    private func untilClosed<T: Sendable>(_ connection: PostgresConnection, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let lost = StockwatchError.unavailable("lost the connection to PostgreSQL at \(server.endpoint)")
        let outcome = FirstOutcome<T>()
        return try await withCheckedThrowingContinuation { continuation in
            outcome.continuation = continuation
            guard sessionClosed.watch({ outcome.finish(.failure(lost)) }) else { return outcome.finish(.failure(lost)) }
            Task(executorPreference: executor) {
                let result: Result<T, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                // Unwatched before the caller goes on, so that the next caller's watch stays.
                self.sessionClosed.watch(nil)
                outcome.finish(result)
            }
        }
    }

    static func isRetryable(_ error: PSQLError) -> Bool {
        ["40001", "40P01", "55P03"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    /// A synchronous write: one transaction.
    func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) throws(StockwatchError) -> T {
        try run { () async throws(StockwatchError) in try await self.transaction(body) }
    }

    /// A synchronous read: no BEGIN and COMMIT around it, two round trips saved. Under
    /// READ COMMITTED a transaction would not give its statements one snapshot anyway.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) throws(StockwatchError) -> T {
        try run { () async throws(StockwatchError) -> T in
            do {
                return try await self.withConnection(body)
            } catch {
                throw self.describe(error)
            }
        }
    }

    /// As `PostgresDatabase.describe`, but a connection that fails under a statement was
    /// up: it was lost (a network that dropped every packet ends so, through the
    /// keepalives), not unreachable. (A pool's connection that could not be opened fails
    /// in `PostgresDatabase.connect`, described there.)
    func describe(_ error: any Error) -> StockwatchError {
        guard let failure = error as? PSQLError, failure.code == .connectionError, let cause = failure.underlying else {
            return PostgresDatabase.describe(error, at: server)
        }
        let reason = PostgresDatabase.reason(String(describing: cause))
        return .unavailable("lost the connection to PostgreSQL at \(server.endpoint): \(reason)")
    }

    /// Rows added at once past which the planner's statistics are refreshed.
    static let bulkRows = 1_000

    /// ANALYZEs tables after a bulk load. Autovacuum would, but only in its next round
    /// (up to a minute later): the first evaluate after importing a million alerts,
    /// planned on statistics of an empty table, ran for minutes instead of seconds. Best
    /// effort: a role that does not own the tables gets a warning, not an error.
    func refreshStatistics(of tables: [String]) {
        // One statement for all; table names come from our own code, never from input.
        let statement = "ANALYZE " + tables.joined(separator: ", ")
        _ = try? read { db in try await db.execute(PostgresQuery(unsafeSQL: statement)) }
    }
}

/// First come, first served: one holder at a time, waiting without blocking a thread.
actor SessionTurn {
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the turn to the next in line, or frees it.
    func release() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }
}

/// Whether the session's connection closed, and what to call when it does: the one
/// statement in flight (the session runs one at a time) fails instead of waiting.
final class SessionClosed: @unchecked Sendable {
    private let lock = NSLock()
    private var closed = false
    private var onClose: (@Sendable () -> Void)?

    /// Watches for `onClose` (nil: stop); false when already closed.
    @discardableResult
    func watch(_ onClose: (@Sendable () -> Void)?) -> Bool {
        lock.withLock {
            self.onClose = onClose
            return !closed
        }
    }

    var isClosed: Bool { lock.withLock { closed } }

    func close() {
        let call: (@Sendable () -> Void)? = lock.withLock {
            closed = true
            defer { onClose = nil }
            return onClose
        }
        call?()
    }
}

/// Resumes its continuation once, with whichever outcome comes first.
private final class FirstOutcome<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    var continuation: CheckedContinuation<T, any Error>?

    func finish(_ result: Result<T, any Error>) {
        let continuation: CheckedContinuation<T, any Error>? = lock.withLock {
            guard !done, let waiting = self.continuation else { return nil }
            done = true
            return waiting
        }
        continuation?.resume(with: result)
    }
}

/// The result of a task another thread waits for; the semaphore orders the write before the read.
private final class ResultBox<T: Sendable>: @unchecked Sendable {
    var result: Result<T, StockwatchError>?
}

/// A task executor on one NIO event loop: the tasks a `PostgresStore` starts run there,
/// so that a caller blocking a thread of the concurrency pool cannot starve them.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop
    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension PostgresConnection {
    /// All rows of `query`, decoded.
    func rows<each Column: PostgresDecodable & Sendable>(_ query: PostgresQuery, _ types: (repeat each Column).Type) async throws -> [(repeat each Column)] {
        var result: [(repeat each Column)] = []
        for try await row in try await self.query(query, logger: PostgresStore.logger) {
            var cells = CellReader(row)
            result.append((repeat try cells.next((each Column).self)))
        }
        return result
    }

    /// The first row of `query`, if any.
    func row<each Column: PostgresDecodable & Sendable>(_ query: PostgresQuery, _ types: (repeat each Column).Type) async throws -> (repeat each Column)? {
        for try await row in try await self.query(query, logger: PostgresStore.logger).decode((repeat each Column).self) {
            return row
        }
        return nil
    }

    /// One column of every row.
    func values<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, _ type: T.Type) async throws -> [T] {
        var result: [T] = []
        for try await value in try await self.query(query, logger: PostgresStore.logger).decode(T.self) { result.append(value) }
        return result
    }

    /// One column of the first row, if any.
    func value<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, _ type: T.Type) async throws -> T? {
        for try await value in try await self.query(query, logger: PostgresStore.logger).decode(T.self) { return value }
        return nil
    }

    /// Runs a statement whose rows, if any, are not needed.
    func execute(_ query: PostgresQuery) async throws {
        try await self.query(query, logger: PostgresStore.logger)
    }
}

/// A row's cells in order, each decoded as a concrete type. For the loops over many rows
/// (evaluate's candidates): PostgresNIO's tuple `decode` resolves generic metadata for
/// every column of every row, a quarter of evaluate's client CPU at 100,000 alerts.
struct CellReader {
    private var cells: PostgresRow.Iterator

    init(_ row: PostgresRow) { cells = row.makeIterator() }

    mutating func next<T: PostgresDecodable>(_ type: T.Type = T.self) throws -> T {
        guard let cell = cells.next() else { throw StockwatchError.internal("a row has fewer columns than read") }
        return try cell.decode(T.self)
    }
}
