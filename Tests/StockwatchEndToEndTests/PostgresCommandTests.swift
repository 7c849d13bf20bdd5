import Foundation
import Testing

/// Issue 15, step 1, against a real PostgreSQL: `db migrate` and `db status`, the refusals,
/// and the other commands' clear "not yet". Runs when PGHOST is set (`.ci/run` runs the
/// suite inside `pg_virtualenv`, which sets PGHOST, PGUSER and PGPASSWORD for a throwaway
/// cluster); skipped with that reason otherwise, unless STOCKWATCH_REQUIRE_POSTGRES=1.
@Suite(.serialized) struct PostgresCommandTests {
    static let server = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("PG") }
    /// The PostgreSQL migrations, in order (PostgresMigrations.swift).
    static let migrations = ["v1-schema-of-sqlite-v7", "v2-alert-starts-beside-alerts", "v3-stream-log-in-commit-order", "v4-notification-state", "v5-alert-snooze", "v6-user-time-zone-quiet-hours", "v7-alert-schedule", "v8-trailing-alerts", "v9-daily-history", "v10-foreign-keys-indexed", "v11-room-for-hot-updates", "v12-last-firing-from-notifications", "v13-level-states-derived", "v14-notifications-keyed-by-time", "v15-notifications-without-symbol-index", "v16-deliveries-due-waiting-only"]
    static let available = server["PGHOST"] != nil || ProcessInfo.processInfo.environment["STOCKWATCH_REQUIRE_POSTGRES"] == "1"

    /// A database of its own for one test, dropped at the end.
    final class Database {
        let name = "stockwatch_test_" + UUID().uuidString.prefix(8).lowercased()
        var url: String { "postgres:///\(name)" }

        init() throws { try Self.psql("CREATE DATABASE \(name)") }

        /// How stockwatch shows a URL: with the user, host and port the PG* variables give.
        static func redacted(_ url: String) -> String {
            let env = PostgresCommandTests.server
            return url.replacingOccurrences(of: "postgres:///", with: "postgres://\(env["PGUSER"] ?? NSUserName())@\(env["PGHOST"] ?? "[/var/run/postgresql]"):\(env["PGPORT"] ?? "5432")/")
        }
        deinit { try? Self.psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }

        static func psql(_ sql: String, database: String = "postgres") throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
            process.arguments = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql]
            process.environment = PostgresCommandTests.server.merging(["PATH": "/usr/bin:/bin"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw TestFailure("psql failed: \(sql)") }
        }
    }

    @Test(.enabled(if: available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func migrateCreatesTheSchemaOnceAndStatusShowsIt() throws {
        let sandbox = try Sandbox(), database = try Database()
        let first = try sandbox.run(["db", "migrate", "--db", database.url, "--json"], extraEnvironment: Self.server)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.isEmpty)
        let report = try #require(try first.json() as? [String: Any])
        #expect(report["backend"] as? String == "postgresql")
        #expect(report["applied"] as? [String] == Self.migrations)
        #expect(report["pending_migrations"] as? [String] == [])
        let tables = (report["tables"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(tables.contains("alerts") && tables.contains("deliveries") && tables.count == 14)
        #expect((report["location"] as? String)?.hasSuffix("/\(database.name)") == true)

        let again = try sandbox.run(["db", "migrate", "--db", database.url, "--json"], extraEnvironment: Self.server)
        #expect(again.status == 0)
        #expect((try again.json() as? [String: Any])?["applied"] as? [String] == [])
        let status = try sandbox.run(["db", "status", "--db", database.url], extraEnvironment: Self.server)
        #expect(status.status == 0)
        #expect(status.stdout.contains("schema: \(Self.migrations.last!)"))
        #expect(status.stdout.contains("pending migrations: none"))
    }

    /// The schema keeps SQLite's constraints: a bad row is refused by the database itself.
    @Test(.enabled(if: available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func theSchemaRefusesWhatSQLitesRefuses() throws {
        let sandbox = try Sandbox(), database = try Database()
        #expect(try sandbox.run(["db", "migrate", "--db", database.url], extraEnvironment: Self.server).status == 0)
        try Database.psql("INSERT INTO users (name, token_hash, created_at) VALUES ('alice', repeat('a', 64), 0)", database: database.name)
        for bad in [
            "INSERT INTO users (name, token_hash, created_at) VALUES ('alice', repeat('b', 64), 0)",  // name unique
            "INSERT INTO alerts (user_id, symbol, kind, value, trigger, channels, created_at) VALUES (1, 'aapl', 'above', 1, 'once', '[\"stdout\"]', 0)",
            "INSERT INTO alerts (user_id, symbol, kind, value, trigger, channels, created_at) VALUES (1, 'AAPL', 'above', 1, 'once', '[]', 0)",
            "INSERT INTO alerts (user_id, symbol, kind, percent, window_seconds, trigger, channels, created_at) VALUES (1, 'AAPL', 'fall', 100, 60, 'once', '[\"stdout\"]', 0)",
            "INSERT INTO devices (user_id, fcm_token, created_at, updated_at) VALUES (99, 't', 0, 0)",  // no such user
        ] {
            #expect(throws: TestFailure.self, "\(bad)") { try Database.psql(bad, database: database.name) }
        }
        try Database.psql("INSERT INTO alerts (user_id, symbol, kind, value, trigger, channels, created_at) VALUES (1, 'AAPL', 'above', 1, 'once', '[\"stdout\"]', 0)", database: database.name)
        // One notification per alert and quote time (v14), whether or not the quote is kept.
        let notification = "INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at) SELECT max(id), 1, 'AAPL', 2, 1000, 'm', 0 FROM alerts"
        try Database.psql(notification, database: database.name)
        #expect(throws: TestFailure.self) { try Database.psql(notification, database: database.name) }
    }

    /// Two migrators at once (two machines upgrading): one applies, the other finds nothing to do.
    @Test(.enabled(if: available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func concurrentMigratorsApplyEachMigrationOnce() throws {
        let sandbox = try Sandbox(), database = try Database()
        let runs = try (0..<4).map { _ in try sandbox.start(["db", "migrate", "--db", database.url, "--json"], extraEnvironment: Self.server) }
        let results = try runs.map { try $0.finish() }
        #expect(results.allSatisfy { $0.status == 0 }, "\(results.map(\.stderr))")
        let applied = results.compactMap { (try? $0.json() as? [String: Any])?["applied"] as? [String] }
        #expect(applied.flatMap { $0 } == Self.migrations)
    }

    @Test(.enabled(if: available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func refusalsNameTheCulpritWithTheirExitCodes() throws {
        let sandbox = try Sandbox(), database = try Database()
        let notYet = try sandbox.run(["alert", "list", "--db", database.url], extraEnvironment: Self.server)
        #expect(notYet.status == 78)
        #expect(notYet.stderr.contains("db migrate"))
        let wrongPassword = try sandbox.run(["db", "status", "--db", database.url], extraEnvironment: Self.server.merging(["PGPASSWORD": "wrong", "PGHOST": "127.0.0.1"]) { $1 })
        // A server that trusts local connections accepts any password; one that checks says so.
        #expect([0, 78].contains(wrongPassword.status), "\(wrongPassword.stderr)")
        #expect(!wrongPassword.stderr.contains("wrong"))
        let noDatabase = try sandbox.run(["db", "status", "--db", "postgres:///stockwatch_no_such_db"], extraEnvironment: Self.server)
        #expect(noDatabase.status == 78)
        #expect(noDatabase.stderr.contains("stockwatch_no_such_db"))
        let refused = try sandbox.run(["db", "status", "--db", "postgres://127.0.0.1:1/x"], extraEnvironment: Self.server)
        #expect(refused.status == 69)
        #expect(refused.stderr == "stockwatch: error: cannot reach PostgreSQL at 127.0.0.1:1: connection refused\n")
        let inline = try sandbox.run(["db", "status", "--db", "postgres://u:hunter2@127.0.0.1/x"], extraEnvironment: Self.server)
        #expect(inline.status == 64)
        #expect(!inline.stderr.contains("hunter2"))
    }
}
