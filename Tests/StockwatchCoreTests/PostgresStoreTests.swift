import Foundation
import PostgresNIO
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

/// What only the PostgreSQL store does (the shared behaviour is StoreContractTests').
@Suite(.enabled(if: TestPostgres.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
struct PostgresStoreTests {
    /// The first evaluate after importing a million alerts was planned on the statistics
    /// of an empty table and ran for minutes: a bulk import refreshes them at once.
    @Test func aBulkImportRefreshesThePlannersStatistics() async throws {
        let location = try await TestPostgres.newDatabase()
        let store = try await Task.detached { try PostgresStore(location) }.value
        func analyzed() async throws -> Bool {
            try await PostgresDatabase.withConnection(location) { connection in
                var result = false
                for try await value in try await connection.query(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'alerts'", logger: PostgresDatabase.logger
                ).decode(Bool.self) { result = value }
                return result
            }
        }
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        func spec(_ index: Int) -> AlertSpec {
            var spec = AlertSpec(symbol: "S\(index % 50)", condition: .above(Double(index + 1)))
            spec.channels = ["stdout"]
            return spec
        }
        let few = (0..<10).map(spec)
        _ = try store.addAlerts(few, limitPerUser: nil, now: now)
        #expect(try await !analyzed())
        let many = (0..<PostgresStore.bulkRows).map(spec)
        _ = try store.addAlerts(many, limitPerUser: nil, now: now)
        #expect(try await analyzed())
    }

    /// v2 moves each alert's start out of its row: a store migrated from v1 keeps every
    /// start (a new alert still judges from the quote it was added at), and nothing else.
    @Test func theV2MigrationKeepsEveryAlertsStart() async throws {
        let location = try await TestPostgres.newDatabase(migrated: false)
        try await PostgresDatabase.withConnection(location) { connection in
            for statement in PostgresMigrations.all[0].statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: PostgresDatabase.logger) }
            for statement in [
                "CREATE TABLE stockwatch_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                "INSERT INTO stockwatch_migrations VALUES ('v1-schema-of-sqlite-v7', 0)",
                "INSERT INTO users (name, token_hash, created_at) VALUES ('admin', repeat('a', 64), 0)",
                """
                INSERT INTO alerts (user_id, symbol, kind, value, trigger, channels, created_at, start_at)
                VALUES (1, 'AAPL', 'above', 1, 'once', '["stdout"]', 0, 1780000000000), (1, 'AAPL', 'above', 2, 'once', '["stdout"]', 0, NULL),
                       (1, 'MSFT', 'below', 3, 'once', '["stdout"]', 0, 0)
                """,
            ] { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: PostgresDatabase.logger) }
        }
        let report = try await PostgresDatabase.migrate(location)
        #expect(report.applied == ["v2-alert-starts-beside-alerts"])
        let store = try await Task.detached { try PostgresStore(location) }.value
        let alerts = try store.alerts(AlertQuery())
        #expect(alerts.map(\.id) == [1, 2, 3])
        let starts = try await PostgresDatabase.withConnection(location) { connection in
            var starts: [Int64: Int64] = [:]
            for try await (id, start) in try await connection.query(
                "SELECT alert_id, start_at FROM alert_starts", logger: PostgresDatabase.logger
            ).decode((Int64, Int64).self) { starts[id] = start }
            return starts
        }
        #expect(starts == [1: 1_780_000_000_000, 3: 0])
    }
}
