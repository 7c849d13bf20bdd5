import Foundation
import GRDB
import StockwatchModel
import StockwatchStore

/// Users own alerts and devices, and log in to `serve` with their API token.
public struct UserService: Sendable {
    public static let defaultUserName = "default"
    let database: AppDatabase

    public init(database: AppDatabase) { self.database = database }

    /// Creates a user; the returned token is never stored or shown again.
    public func add(name: String, now: Date = Date()) throws(StockwatchError) -> NewUserJSON {
        guard Validation.isName(name) else {
            throw .invalidValue(option: "NAME", value: name, reason: "user names use letters, digits, '-', '_', '.' and '@' (at most 64)")
        }
        let token = APIToken.generate()
        let user = try database.write { db throws -> UserJSON in
            if try UserRecord.filter(Column("name") == name).fetchCount(db) > 0 {
                throw StockwatchError.alreadyExists(kind: "user", id: name)
            }
            var user = UserRecord(name: name, tokenHash: APIToken.hash(token), createdAt: now)
            try user.insert(db)
            return UserJSON(id: user.id!, name: name, createdAt: now, alerts: 0, devices: 0)
        }
        return NewUserJSON(user: user, token: token)
    }

    public func list() throws(StockwatchError) -> [UserJSON] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT u.id, u.name, u.created_at,
                       (SELECT count(*) FROM alerts a WHERE a.user_id = u.id) AS alerts,
                       (SELECT count(*) FROM devices d WHERE d.user_id = u.id) AS devices
                FROM users u ORDER BY u.name
                """).map { row in
                UserJSON(id: row["id"], name: row["name"], createdAt: Date(milliseconds: row["created_at"]), alerts: row["alerts"], devices: row["devices"])
            }
        }
    }

    /// Removes the user with their alerts and devices (foreign keys cascade).
    public func remove(name: String) throws(StockwatchError) {
        try database.write { db in
            guard try UserRecord.filter(Column("name") == name).deleteAll(db) == 1 else {
                throw StockwatchError.notFound(kind: "user", id: name)
            }
        }
    }

    /// The id of the named user, or of `default` (created on first use) when no name is given.
    static func resolve(_ name: String?, in db: Database, now: Date) throws -> Int64 {
        let name = name ?? defaultUserName
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE name = ?", arguments: [name]) {
            return id
        }
        guard name == defaultUserName else { throw StockwatchError.notFound(kind: "user", id: name) }
        // Nobody knows this token: the default user is for the shell, not for `serve`.
        var user = UserRecord(name: name, tokenHash: APIToken.hash(APIToken.generate()), createdAt: now)
        try user.insert(db)
        return user.id!
    }

    /// Read-only lookup for filters: an unknown name is an error, never a silent empty list.
    static func existingID(_ name: String, in db: Database) throws -> Int64 {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE name = ?", arguments: [name]) else {
            throw StockwatchError.notFound(kind: "user", id: name)
        }
        return id
    }
}
