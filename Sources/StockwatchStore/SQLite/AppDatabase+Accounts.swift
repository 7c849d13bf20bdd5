import Foundation
import GRDB
import StockwatchModel

extension AppDatabase: AccountStore {
    public func addUser(name: String, tokenHash: String, now: Date) throws(StockwatchError) -> UserJSON {
        try write { db in
            if try UserRecord.named(name).fetchCount(db) > 0 { throw StockwatchError.alreadyExists(kind: "user", id: name) }
            var user = UserRecord(name: name, tokenHash: tokenHash, createdAt: now)
            try user.insert(db)
            return UserJSON(id: user.id!, name: name, createdAt: now, alerts: 0, devices: 0)
        }
    }

    public func users() throws(StockwatchError) -> [UserJSON] {
        try read { db in try Self.users(db, id: nil) }
    }

    public func user(id: Int64) throws(StockwatchError) -> UserJSON {
        try read { db in
            guard let user = try Self.users(db, id: id).first else { throw StockwatchError.notFound(kind: "user", id: String(id)) }
            return user
        }
    }

    public func saveUserSettings(userID: Int64, timezone: String, quietHours: String?, now: Date) throws(StockwatchError) -> UserJSON {
        try write { db in
            try db.execute(sql: "UPDATE users SET timezone = ?, quiet_hours = ? WHERE id = ?", arguments: [timezone, quietHours, userID])
            guard db.changesCount == 1, let user = try Self.users(db, id: userID).first else { throw StockwatchError.notFound(kind: "user", id: String(userID)) }
            // Only a hold leaves a delivery pending with a time ahead (retries are 'retry').
            try db.execute(sql: """
                UPDATE deliveries SET next_attempt_at = :now, updated_at = :now
                WHERE status = 'pending' AND next_attempt_at > :now AND notification_id IN (SELECT id FROM notifications WHERE user_id = :user)
                """, arguments: ["now": now.milliseconds, "user": userID])
            return user
        }
    }

    public func usersWithQuietHours() throws(StockwatchError) -> [(name: String, timezone: String, quietHours: String)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT name, timezone, quiet_hours FROM users WHERE quiet_hours IS NOT NULL").map { ($0["name"], $0["timezone"], $0["quiet_hours"]) }
        }
    }

    static func users(_ db: Database, id: Int64?) throws -> [UserJSON] {
        try Row.fetchAll(db, sql: """
            SELECT u.id, u.name, u.created_at, u.timezone, u.quiet_hours,
                   (SELECT count(*) FROM alerts a WHERE a.user_id = u.id) AS alerts,
                   (SELECT count(*) FROM devices d WHERE d.user_id = u.id) AS devices
            FROM users u WHERE ? IS NULL OR u.id = ? ORDER BY u.name
            """, arguments: [id, id]).map { row in
            UserJSON(id: row["id"], name: row["name"], createdAt: Date(milliseconds: row["created_at"]), alerts: row["alerts"], devices: row["devices"],
                     timezone: row["timezone"], quietHours: row["quiet_hours"])
        }
    }

    /// The user's alerts and devices go with them (foreign keys cascade), and so do their
    /// notifications and deliveries: nothing of theirs can be sent afterwards.
    public func removeUser(name: String) throws(StockwatchError) {
        try write { db in
            guard try UserRecord.named(name).deleteAll(db) == 1 else { throw StockwatchError.notFound(kind: "user", id: name) }
        }
    }

    public func user(tokenHash: String) throws(StockwatchError) -> (id: Int64, name: String, tokenHash: String)? {
        try read { db in
            try UserRecord.filter(Column("token_hash") == tokenHash).fetchOne(db).map { ($0.id!, $0.name, $0.tokenHash) }
        }
    }

    public func tokenHashes() throws(StockwatchError) -> [Int64: String] {
        try read { db in
            var hashes: [Int64: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, token_hash FROM users") { hashes[row["id"]] = row["token_hash"] }
            return hashes
        }
    }

    public func registerDevice(user: String?, fcmToken token: String, label: String?, limitPerUser: Int?, now: Date) throws(StockwatchError) -> DeviceJSON {
        try write { db in
            let userID = try Self.userID(user, in: db, now: now)
            var device: DeviceRecord
            let holder = try DeviceRecord.filter(Column("fcm_token") == token).fetchOne(db)
            if var existing = holder, existing.userId == userID {
                existing.label = label ?? existing.label
                existing.active = true
                existing.deactivatedReason = nil
                existing.updatedAt = now
                try existing.update(db)
                device = existing
            } else {
                if let limit = limitPerUser, try DeviceRecord.owned(by: userID).fetchCount(db) >= limit {
                    throw StockwatchError.limitReached(kind: "device", limit: limit, key: "[serve] max_devices_per_user")
                }
                if let previous = holder {
                    try Self.failWaiting(db, deviceIDs: [previous.id!], reason: DeliveryReason.deviceMoved, now: now)
                    _ = try previous.delete(db)
                }
                device = DeviceRecord(userId: userID, fcmToken: token, label: label, active: true, createdAt: now, updatedAt: now)
                try device.insert(db)
            }
            return try Self.json(device, in: db)
        }
    }

    public func devices(user: String?, afterID: Int64?, limit: Int?) throws(StockwatchError) -> [DeviceJSON] {
        try read { db in
            var request = DeviceRecord.order(Column("id"))
            if let user { request = request.owned(by: try Self.existingUserID(user, in: db)) }
            if let afterID { request = request.filter(Column("id") > afterID) }
            if let limit { request = request.limit(limit) }
            let names = try Self.userNames(db)
            return try request.fetchAll(db).map { Self.json($0, user: names[$0.userId] ?? "?") }
        }
    }

    public func removeDevice(id: Int64, ownerID: Int64?, now: Date) throws(StockwatchError) {
        try write { db in
            var request = DeviceRecord.filter(key: id)
            if let ownerID { request = request.owned(by: ownerID) }
            guard try request.fetchCount(db) == 1 else { throw StockwatchError.notFound(kind: "device", id: String(id)) }
            try Self.failWaiting(db, deviceIDs: [id], reason: DeliveryReason.deviceGone, now: now)
            try request.deleteAll(db)
        }
    }

    // MARK: Shared by the other domains' statements

    /// The id of the named user, or of `default` (created on first use) when no name is
    /// given; another unknown name is `notFound`.
    static func userID(_ name: String?, in db: Database, now: Date) throws -> Int64 {
        let name = name ?? UserRecord.defaultName
        if let id = try UserRecord.named(name).select(Column("id"), as: Int64.self).fetchOne(db) { return id }
        guard name == UserRecord.defaultName else { throw StockwatchError.notFound(kind: "user", id: name) }
        // A random hash nobody knows a token for: the default user is for the shell, not for serve.
        var bytes = SystemRandomNumberGenerator()
        let hash = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &bytes)) }.joined()
        var user = UserRecord(name: name, tokenHash: hash, createdAt: now)
        try user.insert(db)
        return user.id!
    }

    /// For filters: an unknown name is an error, never a silent empty list.
    static func existingUserID(_ name: String, in db: Database) throws -> Int64 {
        guard let id = try UserRecord.named(name).select(Column("id"), as: Int64.self).fetchOne(db) else {
            throw StockwatchError.notFound(kind: "user", id: name)
        }
        return id
    }

    static func userNames(_ db: Database) throws -> [Int64: String] {
        var names: [Int64: String] = [:]
        // Stepped, not `Row.fetchAll`: its cursor's first use costs a cold `alert list` a
        // scan of every conformance record (0.45M instructions).
        let users = try RawStatement(db, "SELECT id, name FROM users")
        defer { users.reset() }
        while try users.step() { names[users.int64(0)] = users.string(1) }
        return names
    }

    static func json(_ device: DeviceRecord, in db: Database) throws -> DeviceJSON {
        json(device, user: try UserRecord.fetchOne(db, key: device.userId)?.name ?? "?")
    }

    static func json(_ device: DeviceRecord, user: String) -> DeviceJSON {
        DeviceJSON(
            id: device.id!, user: user, fcmToken: device.fcmToken, label: device.label, active: device.active,
            deactivatedReason: device.deactivatedReason, createdAt: device.createdAt, updatedAt: device.updatedAt)
    }
}

extension UserRecord {
    /// The user of alerts and devices added without one.
    public static let defaultName = "default"

    static func named(_ name: String) -> QueryInterfaceRequest<UserRecord> { filter(Column("name") == name) }
}
