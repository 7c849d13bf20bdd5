import Foundation

/// What `stockwatch db migrate` and `db status` print: the backend, where it is, its
/// schema, and how much it holds.
public struct DatabaseStatusReport: Codable, Sendable, Equatable {
    public struct Table: Codable, Sendable, Equatable {
        public var name: String
        public var rows: Int64
        public init(name: String, rows: Int64) { self.name = name; self.rows = rows }
    }

    /// `sqlite` or `postgresql`.
    public var backend: String
    /// A file path, or a PostgreSQL URL without its password.
    public var location: String
    /// The newest migration applied, nil for an empty database.
    public var schema: String?
    /// Migrations this binary knows that are not applied yet (`db migrate` applies them).
    public var pendingMigrations: [String]
    /// Migrations the last `db migrate` applied (empty for `db status`).
    public var applied: [String]
    public var tables: [Table]
    /// The file's size, or the database's (`pg_database_size`).
    public var sizeBytes: Int64?

    public init(backend: String, location: String, schema: String?, pendingMigrations: [String], applied: [String], tables: [Table], sizeBytes: Int64?) {
        self.backend = backend
        self.location = location
        self.schema = schema
        self.pendingMigrations = pendingMigrations
        self.applied = applied
        self.tables = tables
        self.sizeBytes = sizeBytes
    }

    enum CodingKeys: String, CodingKey {
        case backend, location, schema, applied, tables
        case pendingMigrations = "pending_migrations"
        case sizeBytes = "size_bytes"
    }
}
