import Foundation
import StockwatchModel

/// `db copy`: a whole store from one backend to another (SQLite to PostgreSQL and back),
/// ids and id counters included, in one transaction on the target.
///
/// The source is read table by table in id order, in batches (a million quotes never sit
/// in memory at once); the target writes every batch inside its one transaction, then
/// checks each table's count against the source's and sets its id counters, so that a
/// notification id phones have seen keeps meaning the same notification and no deleted
/// id is handed out again. A target that holds anything is refused.
public enum StoreCopy {
    /// Rows per batch.
    static let batchSize = 20_000

    public static func copy(from source: DatabaseLocation, to target: DatabaseLocation) throws(StockwatchError) -> DatabaseCopyReport {
        guard source != target else {
            throw .invalidValue(option: "--to", value: target.description, reason: "the target is the source")
        }
        if case let .sqlite(path) = source, !FileManager.default.fileExists(atPath: path) {
            throw .invalidValue(option: "--from", value: path, reason: "no such database file")
        }
        let from = try endpoint(source), to = try endpoint(target)
        let counts = try from.rowCounts()
        let occupied = try to.rowCounts().filter { $0.value > 0 }.keys.sorted()
        guard occupied.isEmpty else {
            throw .invalidValue(option: "--to", value: target.description,
                                reason: "the target is not empty (\(occupied.joined(separator: ", ")) hold rows); copy into a new database")
        }
        let counters = try from.lastIDs()
        try to.load(CopyTable.all, counts: counts, lastIDs: counters) { (table, after) throws(StockwatchError) in
            try from.rows(table, after: after, limit: batchSize)
        }
        return DatabaseCopyReport(
            from: source.description, to: target.description,
            tables: CopyTable.all.map { .init(name: $0.name, rows: counts[$0.name] ?? 0, lastID: $0.hasID ? counters[$0.name] ?? 0 : nil) })
    }

    /// The source opens as any command would (SQLite migrates; PostgreSQL must be current).
    static func endpoint(_ location: DatabaseLocation) throws(StockwatchError) -> any CopyEndpoint {
        switch location {
        case let .sqlite(path): try AppDatabase(path: path)
        case let .postgres(server): try PostgresStore(server)
        }
    }
}

/// A table as `db copy` moves it: its columns, the same on both backends, in order.
struct CopyTable: Sendable {
    enum Kind: Sendable { case int, real, text, bool, json }
    let name: String
    let columns: [(name: String, kind: Kind)]
    /// Rows ordered and batched by an integer `id` (the first column) with a counter;
    /// false: a small table keyed by text, copied in one batch.
    var hasID: Bool { columns.first?.name == "id" }

    /// Where the next batch starts after this one (its last id), or nil when this was the last.
    func cursor(after batch: [[CopyValue]]) -> Int64? {
        guard hasID, batch.count == StoreCopy.batchSize else { return nil }
        return batch.last?.first?.int
    }

    /// Parents before children, so that every foreign key finds its row.
    static let all: [CopyTable] = [
        CopyTable(name: "users", columns: [
            ("id", .int), ("name", .text), ("token_hash", .text), ("created_at", .int), ("timezone", .text), ("quiet_hours", .text),
        ]),
        CopyTable(name: "devices", columns: [
            ("id", .int), ("user_id", .int), ("fcm_token", .text), ("label", .text), ("active", .bool), ("deactivated_reason", .text),
            ("created_at", .int), ("updated_at", .int),
        ]),
        CopyTable(name: "alerts", columns: [
            ("id", .int), ("user_id", .int), ("symbol", .text), ("kind", .text), ("value", .real), ("percent", .real), ("window_seconds", .int),
            ("trigger", .text), ("cooldown_seconds", .int), ("rearm_margin_percent", .real), ("channels", .json), ("state", .text),
            ("note", .text), ("created_at", .int), ("expires_at", .int), ("last_fired_at", .int), ("start_at", .int), ("snoozed_until", .int), ("schedule", .text),
        ]),
        CopyTable(name: "alert_trails", columns: [("alert_id", .int), ("trailing_from", .real)]),
        CopyTable(name: "quotes", columns: [
            ("id", .int), ("symbol", .text), ("price", .real), ("provider", .text), ("observed_at", .int), ("fetched_at", .int),
        ]),
        CopyTable(name: "notifications", columns: [
            ("id", .int), ("alert_id", .int), ("user_id", .int), ("symbol", .text), ("price", .real),
            ("observed_at", .int), ("message", .text), ("created_at", .int), ("state", .text), ("state_changed_at", .int), ("state_device_id", .int),
        ]),
        CopyTable(name: "deliveries", columns: [
            ("id", .int), ("notification_id", .int), ("channel", .text), ("target", .text), ("device_id", .int), ("status", .text),
            ("attempts", .int), ("next_attempt_at", .int), ("lease_until", .int), ("last_error", .text), ("created_at", .int), ("updated_at", .int),
        ]),
        CopyTable(name: "delivery_attempts", columns: [
            ("id", .int), ("delivery_id", .int), ("attempt", .int), ("finished_at", .int), ("outcome", .text), ("error", .text),
        ]),
        CopyTable(name: "provider_state", columns: [
            ("provider", .text), ("last_success_at", .int), ("last_error_at", .int), ("last_error", .text), ("consecutive_failures", .int),
            ("blocked_until", .int), ("blocked_reason", .text),
        ]),
        CopyTable(name: "evaluation_progress", columns: [("symbol", .text), ("observed_at", .int)]),
        CopyTable(name: "access_tokens", columns: [("account", .text), ("token", .text), ("expires_at", .int)]),
        CopyTable(name: "symbol_fetch_state", columns: [("symbol", .text), ("no_data_count", .int), ("retry_at", .int), ("last_reason", .text)]),
        CopyTable(name: "daily_prices", columns: [
            ("symbol", .text), ("day", .text), ("open", .real), ("high", .real), ("low", .real), ("close", .real), ("volume", .real), ("source", .text),
        ]),
        CopyTable(name: "previous_closes", columns: [("symbol", .text), ("day", .text), ("close", .real)]),
    ]
}

/// One value in transit. Booleans travel as 0 and 1, JSON as its text.
enum CopyValue: Sendable, Equatable {
    case int(Int64), real(Double), text(String), null

    var int: Int64? { if case let .int(value) = self { value } else { nil } }
}

/// One side of a copy: `AppDatabase` and `PostgresStore`.
protocol CopyEndpoint {
    /// Every table's rows.
    func rowCounts() throws(StockwatchError) -> [String: Int64]
    /// Up to `limit` rows with an id above `after`, by id (a text-keyed table: all of them).
    func rows(_ table: CopyTable, after: Int64, limit: Int) throws(StockwatchError) -> [[CopyValue]]
    /// The last id each table's counter handed out (at least its highest id).
    func lastIDs() throws(StockwatchError) -> [String: Int64]
    /// In one transaction: every table's rows as `next` hands them out, the counters, and
    /// a check that each table holds `counts` rows; anything else rolls it all back.
    func load(
        _ tables: [CopyTable], counts: [String: Int64], lastIDs: [String: Int64],
        next: @escaping (_ table: CopyTable, _ after: Int64) throws(StockwatchError) -> [[CopyValue]]
    ) throws(StockwatchError)
}

extension CopyEndpoint {
    /// Throws when a loaded table's count differs from the source's.
    static func check(_ table: String, loaded: Int64, expected: Int64) throws(StockwatchError) {
        guard loaded == expected else {
            throw .internal("db copy: \(table) has \(loaded) rows on the target but \(expected) on the source; nothing was copied")
        }
    }
}
