import Foundation
import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore

/// Issue 15, step 1: which database a command opens, and how a PostgreSQL URL is read.
@Suite struct DatabaseLocationTests {
    let env = ["HOME": "/nonexistent-home"]

    @Test func theResolutionOrderIsFlagEnvironmentConfigThenDefault() throws {
        let config = (url: "postgres://cfg-host/cfgdb", file: "/etc/stockwatch.toml")
        #expect(try DatabaseLocation.resolve(explicit: "/a.db", environment: env.merging(["STOCKWATCH_DB": "/b.db"]) { $1 }, configURL: config) == .sqlite(path: "/a.db"))
        #expect(try DatabaseLocation.resolve(explicit: nil, environment: env.merging(["STOCKWATCH_DB": "/b.db"]) { $1 }, configURL: config) == .sqlite(path: "/b.db"))
        guard case let .postgres(server) = try DatabaseLocation.resolve(explicit: nil, environment: env, configURL: config) else {
            Issue.record("the config's url was not used"); return
        }
        #expect(server.host == "cfg-host" && server.database == "cfgdb" && server.source == "/etc/stockwatch.toml")
        #expect(try DatabaseLocation.resolve(explicit: nil, environment: env, configURL: nil) == .sqlite(path: "/nonexistent-home/.local/state/stockwatch/stockwatch.db"))
    }

    @Test func unsetPartsComeFromThePGVariablesThenLibpqDefaults() throws {
        let pg = env.merging(["PGHOST": "db.internal", "PGPORT": "6432", "PGUSER": "app", "PGDATABASE": "alerts", "PGSSLMODE": "require"]) { $1 }
        let fromEnv = try PostgresLocation.parse("postgres://", source: "--db", environment: pg)
        #expect(fromEnv.host == "db.internal" && fromEnv.port == 6432 && fromEnv.user == "app" && fromEnv.database == "alerts" && fromEnv.sslMode == .require)
        let explicit = try PostgresLocation.parse("postgresql://bob@h:7000/shop?sslmode=verify-full&sslrootcert=/ca.pem", source: "--db", environment: pg)
        #expect(explicit.host == "h" && explicit.port == 7000 && explicit.user == "bob" && explicit.database == "shop" && explicit.sslMode == .verifyFull && explicit.sslRootCert == "/ca.pem")
        let defaults = try PostgresLocation.parse("postgres:///", source: "--db", environment: env)
        #expect(defaults.host == "/var/run/postgresql" && defaults.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432" && defaults.sslMode == .prefer)
        #expect(defaults.database == defaults.user)
        #expect(explicit.description == "postgres://bob@h:7000/shop")
    }

    @Test func anIPv6AddressIsWrittenInBracketsAndConnectedToWithout() throws {
        let location = try PostgresLocation.parse("postgres://bob@[::1]:7000/shop", source: "--db", environment: env)
        #expect(location.host == "::1" && location.port == 7000 && location.unixSocketPath == nil)
        #expect(location.description == "postgres://bob@[::1]:7000/shop")
        #expect(location.endpoint == "[::1]:7000")
        let named = try PostgresLocation.parse("postgres://bob@db.internal:7000/shop", source: "--db", environment: env)
        #expect(named.endpoint == "db.internal:7000")
        let socket = try PostgresLocation.parse("postgres:///shop?host=/run/pg", source: "--db", environment: env)
        #expect(socket.endpoint == "/run/pg/.s.PGSQL.5432" && socket.description == "postgres://\(socket.user)@[/run/pg]:5432/shop")
    }

    @Test func aPasswordOnTheCommandLineOrInTheEnvironmentIsRefusedAndNeverEchoed() throws {
        for (explicit, environment) in [("postgres://u:hunter2@h/db", env), (nil, env.merging(["STOCKWATCH_DB": "postgres://u:hunter2@h/db"]) { $1 })] {
            let error = try #require(throws: StockwatchError.self) {
                try DatabaseLocation.resolve(explicit: explicit, environment: environment, configURL: nil)
            }
            #expect(error.message.contains("PGPASSWORD"))
            #expect(!error.message.contains("hunter2"))
            #expect(error.exitStatus == .usage)
        }
        // In a config file it is allowed (the loader insists on 0600).
        guard case let .postgres(server) = try DatabaseLocation.resolve(explicit: nil, environment: env, configURL: ("postgres://u:hunter2@h/db", "/c.toml")) else {
            Issue.record("not a PostgreSQL location"); return
        }
        #expect(server.password == "hunter2")
        #expect(!server.description.contains("hunter2"))
    }

    @Test(arguments: ["postgres://h/db?sslmode=bogus", "postgres://h/db?options=-c", "postgres://h:99999/db"])
    func malformedURLsAreUsageErrorsNamingTheSource(url: String) throws {
        let error = try #require(throws: StockwatchError.self) { try DatabaseLocation.resolve(explicit: url, environment: env, configURL: nil) }
        #expect(error.message.contains("--db"))
        #expect(error.exitStatus == .usage)
    }

    @Test func pgpassLinesMatchAsLibpqDoes() {
        let text = """
            # comment
            other:5432:*:app:nope
            db.internal:6432:alerts:app:s3cr\\:et
            *:*:*:*:fallback
            """
        #expect(PostgresLocation.pgpassLookup(text, host: "db.internal", port: 6432, database: "alerts", user: "app") == "s3cr:et")
        #expect(PostgresLocation.pgpassLookup(text, host: "x", port: 1, database: "y", user: "z") == "fallback")
        #expect(PostgresLocation.pgpassLookup("h:1:d:u:p", host: "h", port: 2, database: "d", user: "u") == nil)
    }

    @Test func thePasswordComesFromPGPASSWORDThenThePasswordFileThenPgpass() throws {
        let store = try TemporaryStore()
        let passwordFile = store.write("pw", "from-file\n", mode: 0o600)
        let pgpass = store.write("pgpass", "*:*:*:*:from-pgpass\n", mode: 0o600)
        var settings = DatabaseSettings()
        settings.url = "postgres://u@h/db"
        func password(_ environment: [String: String]) throws -> String? {
            guard case let .postgres(server) = try settings.location(explicit: nil, environment: environment, configFile: "/c.toml") else { return "not postgres" }
            return server.password
        }
        let base = ["HOME": store.folder, "PGPASSFILE": pgpass]
        settings.passwordFile = passwordFile
        #expect(try password(base.merging(["PGPASSWORD": "from-env"]) { $1 }) == "from-env")
        #expect(try password(base) == "from-file")
        settings.passwordFile = nil
        #expect(try password(base) == "from-pgpass")
        // A password file others can read is refused, as every secret is.
        settings.passwordFile = store.write("open-pw", "x\n", mode: 0o644)
        #expect(throws: StockwatchError.self) { try password(base) }
    }

    @Test func dbStatusOnSQLiteNamesTheSchemaAndCountsTheTables() async throws {
        let store = try TemporaryStore()
        let path = store.folder + "/fresh.db"
        let migrated = try await DatabaseAdmin.migrate(.sqlite(path: path))
        #expect(migrated.backend == "sqlite")
        #expect(migrated.applied == AppDatabase.knownMigrations)
        #expect(migrated.pendingMigrations.isEmpty)
        #expect(migrated.tables.map(\.name).contains("alerts"))
        let again = try await DatabaseAdmin.migrate(.sqlite(path: path))
        #expect(again.applied.isEmpty)
        #expect(try await DatabaseAdmin.status(.sqlite(path: path)).schema == AppDatabase.knownMigrations.last)
    }
}
