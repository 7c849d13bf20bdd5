import Foundation
import GRDB
import GRDBSQLite

/// A prepared GRDB statement driven through SQLite's C API, for the loops that bind or read
/// tens of thousands of rows per run (evaluate; notify's claims and outcomes), where
/// building `StatementArguments` and `Row` values per row costs more than SQLite's own
/// work. Everything else uses GRDB.
/// Indexes are 1-based for `bind`, 0-based for columns, as in the C API.
public struct RawStatement {
    private let handle: OpaquePointer

    public init(_ db: Database, _ sql: String) throws {
        handle = try db.cachedStatement(sql: sql).sqliteStatement
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
    public func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }
    public func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(handle, index, value) }
    public func bind(_ index: Int32, _ value: Double?) {
        if let value { sqlite3_bind_double(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }
    public func bind(_ index: Int32, _ value: String) {
        // SQLITE_TRANSIENT: SQLite copies the text before the Swift string goes away.
        // The bytes in place, with their length: passed as a C string, a short one (a
        // symbol) was first copied into a new array, 1.6% of the near tick.
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        let bound = value.utf8.withContiguousStorageIfAvailable { bytes -> Int32 in
            guard let base = bytes.baseAddress else { return sqlite3_bind_text(handle, index, "", 0, transient) }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                sqlite3_bind_text(handle, index, $0, Int32(bytes.count), transient)
            }
        }
        if bound == nil { sqlite3_bind_text(handle, index, value, -1, transient) }
    }

    public func bind(_ index: Int32, _ value: String?) {
        if let value { bind(index, value) } else { sqlite3_bind_null(handle, index) }
    }

    /// Steps once: true when a row is ready to read.
    public func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(handle)))
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
        }
    }

    /// Runs a statement that returns no rows, then resets it for the next bindings.
    public func execute() throws {
        while try step() {}
        sqlite3_reset(handle)
    }

    public func reset() { sqlite3_reset(handle) }

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    public func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : sqlite3_column_int64(handle, column) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    public func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : sqlite3_column_double(handle, column) }
    public func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(handle, column) else { return "" }
        // SQLite knows the length: no strlen, as `String(cString:)` would do.
        return String(decoding: UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(handle, column))), as: UTF8.self)
    }
    public func optionalString(_ column: Int32) -> String? { isNull(column) ? nil : string(column) }
    /// Whether a text column holds `value`, without making a String of it.
    public func text(_ column: Int32, equals value: String) -> Bool {
        guard let text = sqlite3_column_text(handle, column) else { return false }
        let length = Int(sqlite3_column_bytes(handle, column))
        var value = value
        return value.withUTF8 { bytes in
            bytes.count == length && (length == 0 || memcmp(bytes.baseAddress!, text, length) == 0)
        }
    }
    /// The case of a text column among `cases`, matched on its bytes (nil: none matches).
    public func value<Value>(_ column: Int32, in cases: TextCases<Value>) -> Value? {
        guard let text = sqlite3_column_text(handle, column) else { return nil }
        return cases.match(text, length: Int(sqlite3_column_bytes(handle, column)))
    }
    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
}

/// A result row's columns by position (0-based), read the same from a GRDB `Row` and from
/// a `RawStatement`: a record type has one decoder for both.
protocol ColumnReader {
    func int64(_ column: Int32) -> Int64
    func optionalInt64(_ column: Int32) -> Int64?
    func double(_ column: Int32) -> Double
    func optionalDouble(_ column: Int32) -> Double?
    func string(_ column: Int32) -> String
    func optionalString(_ column: Int32) -> String?
}

extension RawStatement: ColumnReader {}

extension Row: ColumnReader {
    func int64(_ column: Int32) -> Int64 { self[Int(column)] }
    func optionalInt64(_ column: Int32) -> Int64? { self[Int(column)] }
    func double(_ column: Int32) -> Double { self[Int(column)] }
    func optionalDouble(_ column: Int32) -> Double? { self[Int(column)] }
    func string(_ column: Int32) -> String { self[Int(column)] }
    func optionalString(_ column: Int32) -> String? { self[Int(column)] }
}

/// A multi-row `INSERT ... VALUES (...), (...)` run over many rows, `batch` rows per
/// statement. SQLite does work per statement as well as per row (its statement journal,
/// the AUTOINCREMENT counter, the foreign-key counter): one statement per row made a
/// steady evaluate's notification and delivery inserts cost about twice their rows' own
/// work (`Benchmarks/evaluate`, twenty-third session).
struct RowBatches {
    let head: String
    /// One row's placeholders, `(?, ?, 'pending')`, with `parameters` of them.
    let row: String
    let parameters: Int32
    /// After the rows: an `ON CONFLICT` or a `RETURNING` clause.
    var tail = ""
    var batch = 100

    /// Binds row `index` at `offset` (its first parameter is `offset + 1`) with `bind`, and
    /// hands every returned row to `read`. `bind` sets every parameter of its row: a full
    /// batch's statement is bound again without clearing the last batch's values.
    func run(
        _ db: Database, count: Int, bind: (RawStatement, _ offset: Int32, _ index: Int) -> Void,
        read: (RawStatement) -> Void = { _ in }
    ) throws {
        // Prepared once for all the full batches: looking a statement of kilobytes up in
        // GRDB's cache (hashing its text) and clearing its 700 bindings each batch were 2%
        // of a steady evaluate's instructions at 100,000 alerts.
        let full = count >= batch ? try RawStatement(db, sql(rows: batch)) : nil
        var start = 0
        while start < count {
            let rows = min(batch, count - start)
            let statement = rows == batch ? full! : try RawStatement(db, sql(rows: rows))
            for i in 0..<rows { bind(statement, Int32(i) * parameters, start + i) }
            while try statement.step() { read(statement) }
            statement.reset()
            start += rows
        }
    }

    private func sql(rows: Int) -> String {
        "\(head) VALUES \(repeatElement(row, count: rows).joined(separator: ", ")) \(tail)"
    }
}

/// The cases of a text-backed enum as bytes, for reading them from rows without making a
/// String first: evaluate reads a kind, a trigger and a state per alert, and the Strings
/// and their `rawValue` switches were a seventh of a first evaluate's instructions.
public struct TextCases<Value: RawRepresentable & CaseIterable> where Value.RawValue == String {
    private let cases: [(bytes: [UInt8], value: Value)]

    public init(_ type: Value.Type) {
        cases = Value.allCases.map { (Array($0.rawValue.utf8), $0) }
    }

    func match(_ text: UnsafePointer<UInt8>, length: Int) -> Value? {
        for (bytes, value) in cases where bytes.count == length {
            if bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress!, text, length) == 0 }) { return value }
        }
        return nil
    }
}
