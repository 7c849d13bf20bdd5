import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch db migrate`, `db status` and `db copy`, on either backend.
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

    /// Copies a whole store to an empty one on either backend (see StoreCopy): ids and id
    /// counters kept, one transaction on the target, each table's count checked.
    public static func copy(from source: DatabaseLocation, to target: DatabaseLocation) throws(StockwatchError) -> DatabaseCopyReport {
        try StoreCopy.copy(from: source, to: target)
    }
}
