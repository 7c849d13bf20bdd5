import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch db migrate` and `db status`, on either backend.
public enum DatabaseAdmin {
    /// Applies the migrations not applied yet. SQLite files migrate whenever a command opens
    /// them; PostgreSQL only here (ordinary commands need no DDL rights).
    public static func migrate(_ location: DatabaseLocation) async throws(StockwatchError) -> DatabaseStatusReport {
        switch location {
        case let .sqlite(path):
            let before = try AppDatabase.appliedMigrations(atPath: path)
            let database = try AppDatabase(path: path)
            let applied = AppDatabase.knownMigrations.filter { !before.contains($0) }
            return try database.statusReport(applied: applied)
        case let .postgres(server):
            return try await PostgresDatabase.migrate(server)
        }
    }

    public static func status(_ location: DatabaseLocation) async throws(StockwatchError) -> DatabaseStatusReport {
        switch location {
        case let .sqlite(path):
            return try AppDatabase(path: path).statusReport(applied: [])
        case let .postgres(server):
            return try await PostgresDatabase.status(server)
        }
    }
}
