import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import StockwatchModel

/// The PostgreSQL backend: one connection per process step (a cron command is short-lived),
/// its schema's migrations, and `db status`. Every statement binds its values.
public enum PostgresDatabase {
    /// Serialises migrators (two `db migrate` at once), per database.
    static let migrationLock: Int64 = 0x7374_6b77_6d69_6772 // "stkwmigr"

    static let logger = Logger(label: "stockwatch.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Opens a connection, runs `body`, and closes it; errors become StockwatchError.
    /// `eventLoop`: where the connection lives (default: NIO's shared loops). A caller that
    /// blocks a thread while waiting for it must name a loop of its own (PostgresStore).
    public static func withConnection<T: Sendable>(
        _ location: PostgresLocation, on eventLoop: (any EventLoop)? = nil, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws(StockwatchError) -> T {
        let connection = try await connect(location, on: eventLoop)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw describe(error, at: location)
        }
    }

    /// How long reaching the server may take: the TCP connect, then again the start-up
    /// and authentication (a session's and a pool's connections alike).
    static let connectTimeoutSeconds: Int64 = 10

    /// A connection of its own (not from a pool); the caller closes it.
    /// `id`: the connection's in serve's pool (the pool tells them apart by it).
    static func connect(_ location: PostgresLocation, on eventLoop: (any EventLoop)? = nil, id: Int = 1) async throws(StockwatchError) -> PostgresConnection {
        let eventLoop = eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
        var channel: (any Channel)?
        do {
            var configuration: PostgresConnection.Configuration
            if let socket = location.unixSocketPath {
                configuration = .init(unixSocketPath: socket, username: location.user, password: location.password, database: location.database)
            } else {
                let tls = try tls(location)
                let opened = try await keptAliveChannel(to: location, on: eventLoop)
                channel = opened
                configuration = .init(establishedChannel: opened, tls: tls, username: location.user, password: location.password,
                                      database: location.database)
                // What postgres-nio sends for a host it connects to itself: the name for SNI
                // and the certificate's check, never an address.
                if (try? SocketAddress(ipAddress: location.host, port: 0)) == nil { configuration.options.tlsServerName = location.host }
            }
            configuration.options.connectTimeout = .seconds(connectTimeoutSeconds)
            return try await PostgresConnection.connect(on: eventLoop, configuration: configuration, id: id, logger: logger).get()
        } catch {
            try? await channel?.close()
            throw describe(error, at: location)
        }
    }

    /// TCP keepalives, for a server whose host dies or whose network drops every packet
    /// (a failover, a partition, a NAT that forgot the connection): nothing else would
    /// end a wait for an answer to a statement the server had acknowledged, or a LISTEN
    /// connection's wait for the next signal, and a `notify --follow` would stop
    /// delivering without a word. Probes start after 15 s of silence and the connection
    /// ends after three unanswered ones, 5 s apart, or when sent data has waited 30 s
    /// for an acknowledgement: exit 69, "lost the connection". A slow statement is not
    /// cut short: the server's kernel answers the probes whatever the server does.
    static let keepAlive = (idleSeconds: 15, intervalSeconds: 5, probes: 3, unacknowledgedMilliseconds: 30_000)

    static func keptAliveChannel(to location: PostgresLocation, on eventLoop: any EventLoop) async throws -> any Channel {
        try await ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(connectTimeoutSeconds))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.init(rawValue: TCP_KEEPIDLE)), value: keepAlive.idleSeconds)
            .channelOption(.tcpOption(.init(rawValue: TCP_KEEPINTVL)), value: keepAlive.intervalSeconds)
            .channelOption(.tcpOption(.init(rawValue: TCP_KEEPCNT)), value: keepAlive.probes)
            .channelOption(.tcpOption(.init(rawValue: TCP_USER_TIMEOUT)), value: keepAlive.unacknowledgedMilliseconds)
            .connect(host: location.host, port: location.port).get()
    }

    /// libpq's sslmode: `disable`; `allow` and `prefer` take TLS when the server offers it,
    /// unverified; `require` insists on it, unverified unless `sslrootcert` is given
    /// (then as `verify-ca`); `verify-ca` checks the chain; `verify-full` also the host name.
    /// Nil: no TLS. `required`: fail rather than talk in the clear.
    static func tlsSettings(_ location: PostgresLocation) -> (configuration: TLSConfiguration, required: Bool)? {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root = location.sslRootCert { tls.trustRoots = .file(root) }
        switch location.sslMode {
        case .disable:
            return nil
        case .allow, .prefer:
            tls.certificateVerification = .none
            return (tls, false)
        case .require:
            tls.certificateVerification = location.sslRootCert == nil ? .none : .noHostnameVerification
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
        case .verifyFull:
            tls.certificateVerification = .fullVerification
        }
        return (tls, true)
    }

    static func tls(_ location: PostgresLocation) throws -> PostgresConnection.Configuration.TLS {
        guard let (tls, required) = tlsSettings(location) else { return .disable }
        let context = try NIOSSLContext(configuration: tls)
        return required ? .require(context) : .prefer(context)
    }

    /// One line naming host and port, with the server's own reason when it gave one.
    static func describe(_ error: any Error, at location: PostgresLocation) -> StockwatchError {
        if let error = error as? StockwatchError { return error }
        let server = location.endpoint
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message]
            switch (error.code, state.prefix(2)) {
            case (.server, "28"), (.server, "3D"):
                // Authentication failed, or no such database: the settings are wrong.
                return .config(file: location.source, line: nil, key: nil, reason: "PostgreSQL at \(server): \(message ?? state)")
            case (.server, "40"), (.server, "55"):
                return .temporary("PostgreSQL at \(server): \(message ?? state); retry")
            case (.server, _) where state == "57014":
                return .temporary("PostgreSQL at \(server): \(message ?? state); retry")
            case (.server, "57"), (.server, "08"), (.server, "53"):
                // The server shutting down or restarting, a lost connection, or out of
                // resources (too many connections): unavailable, as a refused connect.
                return .unavailable("PostgreSQL at \(server): \(message ?? state) (\(state))")
            case (.server, _):
                return .internal("PostgreSQL at \(server): \(message ?? state) (\(state))")
            case (.sslUnsupported, _):
                return .unavailable("PostgreSQL at \(server) does not offer TLS, which sslmode=\(location.sslMode.rawValue) requires")
            default:
                return .unavailable("cannot reach PostgreSQL at \(server): \(reason(error.underlying.map { String(describing: $0) } ?? "\(error.code)"))")
            }
        }
        if let error = error as? NIOSSLError {
            return .unavailable("TLS with PostgreSQL at \(server) failed: \(error)")
        }
        return .unavailable("cannot reach PostgreSQL at \(server): \(reason(String(describing: error)))")
    }

    /// The system's words for the usual failures, instead of NIO's nested descriptions.
    static func reason(_ text: String) -> String {
        for (needle, words) in [("Connection refused", "connection refused"), ("No such file or directory", "no such socket"),
                                ("timed out", "connection timed out"), ("connectTimeout", "connection timed out"),
                                ("Network is unreachable", "network unreachable"), ("No address", "host name not found")]
        where text.contains(needle) { return words }
        return text.truncatedForMessage
    }

    /// Applies every migration not yet applied, in one transaction, under an advisory lock,
    /// and reports the result (with the names applied) over the same connection.
    public static func migrate(_ location: PostgresLocation, now: Date = Date()) async throws(StockwatchError) -> DatabaseStatusReport {
        try await withConnection(location) { connection in
            let applied = try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS stockwatch_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)", logger: logger)
                let done = try await appliedMigrations(connection)
                var applied: [String] = []
                for migration in PostgresMigrations.all where !done.contains(migration.name) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    let name = migration.name, at = Int64(now.timeIntervalSince1970 * 1000)
                    try await connection.query("INSERT INTO stockwatch_migrations (name, applied_at) VALUES (\(name), \(at))", logger: logger)
                    applied.append(name)
                }
                return applied
            }
            return try await report(connection, location: location, applied: applied)
        }
    }

    static func appliedMigrations(_ connection: PostgresConnection) async throws -> Set<String> {
        let exists = try await connection.query("SELECT to_regclass('stockwatch_migrations') IS NOT NULL", logger: logger)
        var present = false
        for try await value in exists.decode(Bool.self) { present = value }
        guard present else { return [] }
        var names = Set<String>()
        for try await name in try await connection.query("SELECT name FROM stockwatch_migrations", logger: logger).decode(String.self) {
            names.insert(name)
        }
        return names
    }

    /// The schema's state and the size of each table.
    public static func status(_ location: PostgresLocation) async throws(StockwatchError) -> DatabaseStatusReport {
        try await withConnection(location) { connection in try await report(connection, location: location, applied: []) }
    }

    static func report(_ connection: PostgresConnection, location: PostgresLocation, applied: [String]) async throws -> DatabaseStatusReport {
        let done = try await appliedMigrations(connection)
        let known = PostgresMigrations.all.map(\.name)
        var tables: [DatabaseStatusReport.Table] = []
        if !done.isEmpty {
            for table in schemaTables {
                // Table names come from our own list, never from input.
                let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), logger: logger)
                for try await count in rows.decode(Int64.self) { tables.append(.init(name: table, rows: count)) }
            }
        }
        var size: Int64?
        for try await bytes in try await connection.query("SELECT pg_database_size(current_database())", logger: logger).decode(Int64.self) {
            size = bytes
        }
        return DatabaseStatusReport(
            backend: "postgresql", location: location.description,
            schema: known.last(where: done.contains), pendingMigrations: known.filter { !done.contains($0) },
            applied: applied, tables: tables, sizeBytes: size)
    }

    /// Ordinary commands do not migrate PostgreSQL (a least-privilege role cannot run DDL):
    /// an out-of-date schema is a configuration error with the command that fixes it.
    static func requireCurrentSchema(on connection: PostgresConnection, at location: PostgresLocation) async throws(StockwatchError) {
        // Only the migrations table: counting every table (as `db status` does) would cost
        // each command a scan of the quotes.
        let done: Set<String>
        do { done = try await appliedMigrations(connection) } catch { throw describe(error, at: location) }
        let pending = PostgresMigrations.all.map(\.name).filter { !done.contains($0) }
        guard pending.isEmpty else {
            throw .config(file: location.source, line: nil, key: nil,
                          reason: "the PostgreSQL schema at \(location.description) is not up to date (\(pending.count) migrations pending): run `stockwatch db migrate`")
        }
    }
}
