import Foundation
import GRDB
import StockwatchModel

extension AppDatabase {
    /// v14: the CHECKs of the tables every tick writes name their value sets as
    /// comparisons (as v13 did for `alerts`). For an IN list of more than two constants
    /// SQLite builds an ephemeral table each time the CHECK runs: 10,000 notifications,
    /// their deliveries and a status update each took 0.194 s with the lists, 0.108 s
    /// without. The meaning is the same and no stored row changes, so the CHECK text is
    /// edited in place under `writable_schema`, as SQLite documents for constraint
    /// changes (https://sqlite.org/lang_altertable.html, "other kinds of table schema
    /// changes"), instead of rebuilding tables of millions of rows.
    static func checkSetsAsComparisons(_ db: Database) throws {
        let edits: [(table: String, list: String, sets: String)] = [
            ("deliveries", "status IN ('pending', 'sending', 'sent', 'retry', 'failed', 'dead')",
             anyOf("status", ["pending", "sending", "sent", "retry", "failed", "dead"])),
            ("delivery_attempts", "outcome IN ('sent', 'retry', 'failed', 'dead')", anyOf("outcome", ["sent", "retry", "failed", "dead"])),
            ("notifications", "state IN ('unread', 'read', 'dismissed')", anyOf("state", ["unread", "read", "dismissed"])),
            ("provider_state", "provider IN ('fixer', 'currencylayer', 'finnhub', 'stooq')", anyOf("provider", ["fixer", "currencylayer", "finnhub", "stooq"])),
            ("daily_prices", "source IN ('stooq', 'file', 'quotes')", anyOf("source", ["stooq", "file", "quotes"])),
        ]
        let version = try Int.fetchOne(db, sql: "PRAGMA schema_version") ?? 0
        try db.execute(sql: "PRAGMA writable_schema = ON")
        for edit in edits {
            try db.execute(
                sql: "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = ? AND instr(sql, ?) > 0",
                arguments: [edit.list, edit.sets, edit.table, edit.list])
            guard db.changesCount == 1 else { throw StockwatchError.internal("migration v14: the CHECK of \(edit.table) is not as created") }
        }
        try db.execute(sql: "PRAGMA schema_version = \(version + 1)")
        try db.execute(sql: "PRAGMA writable_schema = OFF")
        db.clearSchemaCache()
    }
}
