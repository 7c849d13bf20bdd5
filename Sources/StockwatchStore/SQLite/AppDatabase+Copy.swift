import Foundation
import GRDB
import StockwatchModel

/// `db copy` to and from an SQLite file (see StoreCopy).
extension AppDatabase: CopyEndpoint {
    /// The tables whose ids are AUTOINCREMENT, with a counter in `sqlite_sequence`.
    static let countedTables: Set<String> = ["users", "devices", "alerts", "quotes", "notifications", "deliveries"]

    func rowCounts() throws(StockwatchError) -> [String: Int64] {
        try read { db in
            var counts: [String: Int64] = [:]
            for table in CopyTable.all { counts[table.name] = try Int64.fetchOne(db, sql: "SELECT count(*) FROM \(table.name)") ?? 0 }
            return counts
        }
    }

    /// An alert's start as the copy carries it, NULL once evaluate has judged from it
    /// (here `start_at` stays; its round says whether it was judged, migration v15).
    static let copiedStartSQL = "CASE WHEN start_round > (SELECT judged_through FROM evaluation_starts) THEN start_at END"

    func rows(_ table: CopyTable, after: Int64, limit: Int) throws(StockwatchError) -> [[CopyValue]] {
        // An alert's state as readers show it: the target derives nothing from prices it
        // has not judged (PostgreSQL never does).
        let columns = table.columns.map { column in
            guard table.name == "alerts" else { return column.name }
            switch column.name {
            case "start_at": return Self.copiedStartSQL
            case "state": return AlertRecord.state(of: "alerts")
            default: return column.name
            }
        }
            .joined(separator: ", ")
        let (sql, arguments): (String, StatementArguments) = table.hasID
            ? ("SELECT \(columns) FROM \(table.name) WHERE id > ? ORDER BY id LIMIT \(limit)", [after])
            : ("SELECT \(columns) FROM \(table.name) ORDER BY 1", [])
        return try read { db in
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            var rows: [[CopyValue]] = []
            while let row = try cursor.next() {
                rows.append(table.columns.indices.map { index in
                    switch row[index] as DatabaseValue {
                    case let value where value.isNull: .null
                    case let value:
                        switch value.storage {
                        case let .int64(number): table.columns[index].kind == .real ? .real(Double(number)) : .int(number)
                        case let .double(number): .real(number)
                        case let .string(text): .text(text)
                        default: .null
                        }
                    }
                })
            }
            return rows
        }
    }

    func lastIDs() throws(StockwatchError) -> [String: Int64] {
        try read { db in
            var last: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, seq FROM sqlite_sequence") { last[row["name"]] = row["seq"] }
            for table in CopyTable.all where table.hasID {
                let highest = try Int64.fetchOne(db, sql: "SELECT COALESCE(max(id), 0) FROM \(table.name)") ?? 0
                last[table.name] = max(last[table.name] ?? 0, highest)
            }
            return last
        }
    }

    func load(
        _ tables: [CopyTable], counts: [String: Int64], lastIDs: [String: Int64],
        next: @escaping (CopyTable, Int64) throws(StockwatchError) -> [[CopyValue]]
    ) throws(StockwatchError) {
        // The write's closure runs while this thread waits: `next` is used only inside it.
        let source = UncheckedBox(next)
        try write { db in
            for table in tables {
                var columns = table.columns.map(\.name)
                var values = columns.indices.map { "?\($0 + 1)" }
                if table.name == "alerts", let start = columns.firstIndex(of: "start_at") {
                    // Not judged yet: a round above the new store's judged_through (0).
                    columns.append("start_round")
                    values.append("?\(start + 1) IS NOT NULL")
                }
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO \(table.name) (\(columns.joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))
                    """)
                var after = Int64.min
                while true {
                    let batch = try source.value(table, after)
                    for row in batch {
                        try insert.execute(arguments: StatementArguments(row.map { value -> (any DatabaseValueConvertible)? in
                            switch value {
                            case let .int(number): number
                            case let .real(number): number
                            case let .text(text): text
                            case .null: nil
                            }
                        }))
                    }
                    guard let next = table.cursor(after: batch) else { break }
                    after = next
                }
                let loaded = try Int64.fetchOne(db, sql: "SELECT count(*) FROM \(table.name)") ?? 0
                try Self.check(table.name, loaded: loaded, expected: counts[table.name] ?? 0)
                if table.name == "alerts" {
                    // Every alert copied may follow (migration v15).
                    try db.execute(sql: "UPDATE evaluation_starts SET last_alert_id = (SELECT COALESCE(max(id), 0) FROM alerts)")
                }
                if Self.countedTables.contains(table.name), let last = lastIDs[table.name], last > 0 {
                    try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = ?", arguments: [table.name])
                    try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", arguments: [table.name, last])
                }
            }
        }
    }
}

/// A value handed to a closure that runs while its owner waits for it.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
