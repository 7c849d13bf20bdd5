import Foundation

/// What `stockwatch db copy` prints: each table's rows, checked against the source, and
/// the id counters carried over.
public struct DatabaseCopyReport: Codable, Sendable, Equatable {
    public struct Table: Codable, Sendable, Equatable {
        public var name: String
        public var rows: Int64
        /// The id the table's counter has handed out last (nil: a table without ids);
        /// the target hands out only higher ones, as the source would have.
        public var lastID: Int64?
        public init(name: String, rows: Int64, lastID: Int64?) {
            self.name = name
            self.rows = rows
            self.lastID = lastID
        }
        enum CodingKeys: String, CodingKey {
            case name, rows
            case lastID = "last_id"
        }
    }

    public var from: String
    public var to: String
    public var tables: [Table]
    public init(from: String, to: String, tables: [Table]) {
        self.from = from
        self.to = to
        self.tables = tables
    }
}
