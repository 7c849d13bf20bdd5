import Foundation
import GRDB
import StockwatchModel

/// `db migrate` and `db status` on SQLite, where opening the file migrates it.
extension AppDatabase {
    /// The migrations already applied to the file at `path`, read without changing it
    /// (none when there is no file yet).
    /// Every migration this binary knows, in order.
    public static var knownMigrations: [String] { migrator.migrations }

    public static func appliedMigrations(atPath path: String) throws(StockwatchError) -> Set<String> {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        do {
            var configuration = Configuration()
            configuration.readonly = true
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in try migrator.appliedIdentifiers(db) }
        } catch {
            throw translate(error, path: path)
        }
    }

    public func statusReport(applied: [String]) throws(StockwatchError) -> DatabaseStatusReport {
        let path = self.path
        return try read { db in
            let done = try Self.migrator.appliedIdentifiers(db)
            let known = Self.migrator.migrations
            let tables = try schemaTables.map { table in
                // Table names come from our own list, never from input.
                DatabaseStatusReport.Table(name: table, rows: try Int64.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0)
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil
            return DatabaseStatusReport(
                backend: "sqlite", location: path, schema: known.last(where: done.contains),
                pendingMigrations: known.filter { !done.contains($0) }, applied: applied, tables: tables, sizeBytes: size)
        }
    }
}
