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
}
