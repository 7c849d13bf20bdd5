import Foundation
import GRDB
import PostgresNIO
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore
@testable import StockwatchServer

/// A fresh database in its own temporary folder, removed at deinit.
final class TemporaryStore {
    let folder: String
    let database: AppDatabase

    /// `migratedFrom`: the database is first created at that migration (a schema an
    /// earlier release left behind), then opened, which migrates it to today's.
    /// `rows`: written into that earlier schema before the migration.
    init(migratedFrom migration: String? = nil, rows: ((Database) throws -> Void)? = nil) throws {
        folder = NSTemporaryDirectory() + "stockwatch-core-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let migration {
            let old = try DatabaseQueue(path: folder + "/test.db")
            try AppDatabase.migrator.migrate(old, upTo: migration)
            if let rows { try old.write(rows) }
            try old.close()
        }
        database = try AppDatabase(path: folder + "/test.db")
    }

    /// The schema of the release before ids were never reused (issue: a removed phone's
    /// retry reached another user's phone).
    static let previousSchema = "v5-notification-ids-never-reused"

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func write(_ name: String, _ contents: String, mode: Int = 0o600) -> String {
        let path = folder + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: mode])
        return path
    }
}

/// A config whose providers are the given fakes, each with a key file when it needs one.
func fakeProviders(_ store: TemporaryStore, _ providers: [(ProviderName, String)], tweak: (inout ProviderConfig) -> Void = { _ in }) -> Config {
    var config = Config()
    for (name, url) in providers {
        var provider = ProviderConfig(name: name)
        provider.baseURL = url
        provider.timeoutSeconds = 2
        if name.needsKey { provider.apiKey = .file(store.write("\(name.rawValue).key", "KEY-\(name.rawValue)")) }
        tweak(&provider)
        config.providers[name.rawValue] = provider
    }
    return config
}

func expectError(_ body: () throws -> Void) -> StockwatchError? {
    do {
        try body()
        return nil
    } catch let error as StockwatchError {
        return error
    } catch {
        return .internal("unexpected \(error)")
    }
}

/// A real PostgreSQL for the store's tests: there when PGHOST is set (`.ci/run` runs the
/// suite inside `pg_virtualenv`, which sets PGHOST, PGPORT, PGUSER and PGPASSWORD for a
/// throwaway cluster), or required by STOCKWATCH_REQUIRE_POSTGRES=1.
enum TestPostgres {
    static let environment = ProcessInfo.processInfo.environment
    static let available = environment["PGHOST"] != nil || environment["STOCKWATCH_REQUIRE_POSTGRES"] == "1"

    /// The server's maintenance database, as the environment names it.
    static func location(database: String) throws -> PostgresLocation {
        var location = try PostgresLocation.parse("postgres:///\(database)", source: "test", environment: environment)
        location.password = environment["PGPASSWORD"]
        return location
    }

    /// Test databases are named after the machine and the process that made them:
    /// `stockwatch_test_<host>_<pid>_<random>`.
    static let namePrefix = "stockwatch_test_" + String(format: "%08x", ProcessInfo.processInfo.hostName.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 }) + "_"
    private static let sweep = Once()

    /// A new database of its own, migrated unless `migrated` is false. CI's cluster is
    /// thrown away after the run; on a developer's cluster, which lives on, the first new
    /// database of a run drops those that test processes of this machine left behind
    /// when they ended (a run of the suite leaves about 200).
    static func newDatabase(migrated: Bool = true) async throws -> PostgresLocation {
        let name = namePrefix + "\(getpid())_" + UUID().uuidString.prefix(8).lowercased()
        // A database name cannot be bound; this one is made of digits, hex digits and _.
        try await PostgresDatabase.withConnection(try location(database: "postgres")) { connection in
            if sweep.first() {
                for try await leftover in try await connection.query(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, \(namePrefix))", logger: PostgresDatabase.logger
                ).decode(String.self) {
                    let pid = leftover.dropFirst(namePrefix.count).prefix { $0 != "_" }
                    guard let pid = pid_t(pid), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH,
                          leftover.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
                    else { continue }
                    try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(leftover) WITH (FORCE)"), logger: PostgresDatabase.logger)
                }
            }
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: PostgresDatabase.logger)
        }
        let location = try location(database: name)
        if migrated { _ = try await PostgresDatabase.migrate(location) }
        return location
    }

    static func newStore(connections: PostgresStore.Connections = .session) async throws -> any DataStore {
        let location = try await newDatabase()
        // PostgresStore waits on its own event loop; it must not be opened on a thread it needs.
        return try await Task.detached { try PostgresStore(location, connections: connections) }.value
    }

    /// Another store on `store`'s database, as a second process would open it.
    @Sendable static func reopen(_ store: any DataStore) async throws -> any DataStore {
        let location = (store as! PostgresStore).server
        return try await Task.detached { try PostgresStore(location) }.value
    }
}

/// True for the first caller only.
final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false

    func first() -> Bool {
        lock.withLock {
            defer { done = true }
            return !done
        }
    }
}
