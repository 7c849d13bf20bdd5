import Foundation
import PostgresNIO
import StockwatchModel

/// `db copy` to and from PostgreSQL (see StoreCopy). Rows arrive as one JSON document per
/// batch (`jsonb_to_recordset` binds them, NULLs included, as one parameter).
extension PostgresStore: CopyEndpoint {
    func rowCounts() throws(StockwatchError) -> [String: Int64] {
        try read { db in
            var counts: [String: Int64] = [:]
            // Table names come from our own list, never from input.
            for table in CopyTable.all { counts[table.name] = try await db.value(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table.name)"), Int64.self) ?? 0 }
            return counts
        }
    }

    func rows(_ table: CopyTable, after: Int64, limit: Int) throws(StockwatchError) -> [[CopyValue]] {
        // An alert's state as readers show it: the target derives nothing from prices it
        // has not judged.
        let columns = table.columns.map { column -> String in
            if table.name == "alerts", column.name == "state" { return Self.state(of: "alerts", start: "alert_starts.alert_id") }
            return switch column.kind {
            case .int: "\(column.name)::BIGINT"
            case .real: "\(column.name)::DOUBLE PRECISION"
            case .json: "\(column.name)::TEXT"
            case .text, .bool: column.name
            }
        }.joined(separator: ", ")
        var binds = PostgresBindings()
        let sql: String
        if table.hasID {
            binds.append(after)
            sql = "SELECT \(columns) FROM \(Self.copySource(table)) WHERE id > $1 ORDER BY id LIMIT \(limit)"
        } else {
            sql = "SELECT \(columns) FROM \(table.name) ORDER BY 1"
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        return try read { db in
            var rows: [[CopyValue]] = []
            for try await row in try await db.query(query, logger: Self.logger) {
                let cells = row.makeRandomAccess()
                rows.append(try table.columns.indices.map { index -> CopyValue in
                    switch table.columns[index].kind {
                    case .int: try cells[index].decode(Int64?.self).map(CopyValue.int) ?? .null
                    case .real: try cells[index].decode(Double?.self).map(CopyValue.real) ?? .null
                    case .text, .json: try cells[index].decode(String?.self).map(CopyValue.text) ?? .null
                    case .bool: try cells[index].decode(Bool?.self).map { .int($0 ? 1 : 0) } ?? .null
                    }
                })
            }
            return rows
        }
    }

    /// Where a table's copy rows come from: an alert's start lives in `alert_starts` here
    /// (the v2 migration) and in the alert's row on SQLite.
    static func copySource(_ table: CopyTable) -> String {
        table.name == "alerts" ? "alerts LEFT JOIN alert_starts ON alert_starts.alert_id = alerts.id" : table.name
    }

    func lastIDs() throws(StockwatchError) -> [String: Int64] {
        try read { db in
            var last: [String: Int64] = [:]
            for table in CopyTable.all where table.hasID {
                let sequence = try await db.value("""
                    SELECT last_value FROM pg_sequences
                    WHERE format('%I.%I', schemaname, sequencename) = pg_get_serial_sequence(\(table.name), 'id')
                    """, Int64?.self) ?? nil
                let highest = try await db.value(PostgresQuery(unsafeSQL: "SELECT COALESCE(max(id), 0)::BIGINT FROM \(table.name)"), Int64.self) ?? 0
                last[table.name] = max(sequence ?? 0, highest)
            }
            return last
        }
    }

    func load(
        _ tables: [CopyTable], counts: [String: Int64], lastIDs: [String: Int64],
        next: @escaping (CopyTable, Int64) throws(StockwatchError) -> [[CopyValue]]
    ) throws(StockwatchError) {
        // The transaction runs while this thread waits: `next` is used only inside it.
        let source = UncheckedBox(next)
        try write { db in
            for table in tables {
                let names = table.columns.map(\.name).joined(separator: ", ")
                let arrays = table.columns.enumerated().map { index, column -> String in
                    let type = switch column.kind {
                    case .int: "BIGINT"
                    case .real: "DOUBLE PRECISION"
                    case .text: "TEXT"
                    case .bool: "BOOLEAN"
                    case .json: "JSONB"
                    }
                    return "$\(index + 1)::\(type)[]"
                }.joined(separator: ", ")
                let insert = Self.copyInsert(table, names: names, arrays: arrays)
                var after = Int64.min
                while true {
                    let batch = try source.value(table, after)
                    if !batch.isEmpty {
                        var binds = PostgresBindings()
                        for index in table.columns.indices { binds.append(Self.arrayLiteral(batch, column: index, table.columns[index].kind)) }
                        try await db.execute(PostgresQuery(unsafeSQL: insert, binds: binds))
                    }
                    guard let next = table.cursor(after: batch) else { break }
                    after = next
                }
                let loaded = try await db.value(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table.name)"), Int64.self) ?? 0
                try Self.check(table.name, loaded: loaded, expected: counts[table.name] ?? 0)
                if table.hasID, let last = lastIDs[table.name], last > 0 {
                    try await db.execute("SELECT setval(pg_get_serial_sequence(\(table.name), 'id'), \(last), true)")
                }
            }
        }
        refreshStatistics(of: tables.map(\.name) + ["alert_starts"])
    }

    /// One batch's INSERT: an alert's start goes to `alert_starts`, in the same statement.
    static func copyInsert(_ table: CopyTable, names: String, arrays: String) -> String {
        guard table.name == "alerts" else { return "INSERT INTO \(table.name) (\(names)) SELECT * FROM unnest(\(arrays))" }
        let rowNames = table.columns.map(\.name).filter { $0 != "start_at" }.joined(separator: ", ")
        return """
            WITH x AS (SELECT * FROM unnest(\(arrays)) AS x(\(names))),
                 added AS (INSERT INTO alerts (\(rowNames)) SELECT \(rowNames) FROM x)
            INSERT INTO alert_starts (alert_id, start_at) SELECT id, start_at FROM x WHERE start_at IS NOT NULL
            """
    }

    /// One column of a batch as PostgreSQL's array text (`{1,NULL,"a \\"b\\""}`), cast to
    /// its type by the INSERT: one parameter per column, NULLs included, which binary
    /// arrays here cannot carry.
    static func arrayLiteral(_ rows: [[CopyValue]], column: Int, _ kind: CopyTable.Kind) -> String {
        var text = "{"
        text.reserveCapacity(rows.count * 12)
        for (index, row) in rows.enumerated() {
            if index > 0 { text += "," }
            switch (row[column], kind) {
            case (.null, _): text += "NULL"
            case let (.int(number), .bool): text += number != 0 ? "t" : "f"
            case let (.int(number), _): text += String(number)
            case let (.real(number), _): text += "\(number)"
            case let (.text(value), _):
                text += "\""
                for character in value.unicodeScalars {
                    if character == "\"" || character == "\\" { text += "\\" }
                    text.unicodeScalars.append(character)
                }
                text += "\""
            }
        }
        return text + "}"
    }
}
