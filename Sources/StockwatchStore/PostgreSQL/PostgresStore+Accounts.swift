import Foundation
import PostgresNIO
import StockwatchModel

extension PostgresStore: AccountStore {
    public func addUser(name: String, tokenHash: String, now: Date) throws(StockwatchError) -> UserJSON {
        try write { db in
            let at = now.milliseconds
            // Asked first: a refused INSERT would still use up an identity value, and ids
            // should run as they do on SQLite.
            guard try await db.value("SELECT id FROM users WHERE name = \(name)", Int64.self) == nil,
                  let id = try await db.value("""
                INSERT INTO users (name, token_hash, created_at) VALUES (\(name), \(tokenHash), \(at))
                ON CONFLICT (name) DO NOTHING RETURNING id
                """, Int64.self)
            else { throw StockwatchError.alreadyExists(kind: "user", id: name) }
            return UserJSON(id: id, name: name, createdAt: Date(milliseconds: at), alerts: 0, devices: 0)
        }
    }

    public func users() throws(StockwatchError) -> [UserJSON] {
        try read { db in try await Self.users(db, id: nil) }
    }

    public func user(id: Int64) throws(StockwatchError) -> UserJSON {
        try read { db in
            guard let user = try await Self.users(db, id: id).first else { throw StockwatchError.notFound(kind: "user", id: String(id)) }
            return user
        }
    }

    public func saveUserSettings(userID: Int64, timezone: String, quietHours: String?, now: Date) throws(StockwatchError) -> UserJSON {
        try write { db in
            guard try await db.value("UPDATE users SET timezone = \(timezone), quiet_hours = \(quietHours) WHERE id = \(userID) RETURNING id", Int64.self) != nil,
                  let user = try await Self.users(db, id: userID).first
            else { throw StockwatchError.notFound(kind: "user", id: String(userID)) }
            // Only a hold leaves a delivery pending with a time ahead (retries are 'retry').
            let released = try await db.values("""
                UPDATE deliveries SET next_attempt_at = \(now.milliseconds), updated_at = \(now.milliseconds)
                WHERE status = 'pending' AND next_attempt_at > \(now.milliseconds)
                  AND notification_id IN (SELECT id FROM notifications WHERE user_id = \(userID))
                RETURNING id
                """, Int64.self)
            if !released.isEmpty { try await Self.signalDeliveries(db) }
            return user
        }
    }

    public func usersWithQuietHours() throws(StockwatchError) -> [(name: String, timezone: String, quietHours: String)] {
        try read { db in
            try await db.rows("SELECT name, timezone, quiet_hours FROM users WHERE quiet_hours IS NOT NULL", (String, String, String).self)
                .map { (name: $0.0, timezone: $0.1, quietHours: $0.2) }
        }
    }

    static func users(_ db: PostgresConnection, id: Int64?) async throws -> [UserJSON] {
        try await db.rows("""
            SELECT u.id, u.name, u.created_at,
                   (SELECT count(*) FROM alerts a WHERE a.user_id = u.id),
                   (SELECT count(*) FROM devices d WHERE d.user_id = u.id), u.timezone, u.quiet_hours
            FROM users u WHERE \(id)::BIGINT IS NULL OR u.id = \(id) ORDER BY u.name COLLATE "C"
            """, (Int64, String, Int64, Int, Int, String, String?).self
        ).map { UserJSON(id: $0.0, name: $0.1, createdAt: Date(milliseconds: $0.2), alerts: $0.3, devices: $0.4, timezone: $0.5, quietHours: $0.6) }
    }

    /// Foreign keys cascade to the user's alerts, devices, notifications and deliveries.
    public func removeUser(name: String) throws(StockwatchError) {
        try write { db in
            guard try await db.value("DELETE FROM users WHERE name = \(name) RETURNING id", Int64.self) != nil else {
                throw StockwatchError.notFound(kind: "user", id: name)
            }
        }
    }

    public func user(tokenHash: String) throws(StockwatchError) -> (id: Int64, name: String, tokenHash: String)? {
        try read { db in
            try await db.row("SELECT id, name, token_hash FROM users WHERE token_hash = \(tokenHash)", (Int64, String, String).self)
                .map { (id: $0.0, name: $0.1, tokenHash: $0.2) }
        }
    }

    public func tokenHashes() throws(StockwatchError) -> [Int64: String] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try await db.rows("SELECT id, token_hash FROM users", (Int64, String).self).map { ($0.0, $0.1) })
        }
    }

    public func registerDevice(user: String?, fcmToken token: String, label: String?, limitPerUser: Int?, now: Date) throws(StockwatchError) -> DeviceJSON {
        try write { db in
            let userID = try await Self.userID(user, db, now: now, lock: true)
            let at = now.milliseconds
            // The token's row is locked: two registrations of one token queue here.
            let holder = try await db.row("SELECT id, user_id FROM devices WHERE fcm_token = \(token) FOR UPDATE", (Int64, Int64).self)
            if let holder, holder.1 == userID {
                try await db.execute("""
                    UPDATE devices SET label = COALESCE(\(label), label), active = TRUE, deactivated_reason = NULL, updated_at = \(at)
                    WHERE id = \(holder.0)
                    """)
                return try await Self.device(id: holder.0, db)
            }
            if let limit = limitPerUser, try await db.value("SELECT count(*) FROM devices WHERE user_id = \(userID)", Int.self) ?? 0 >= limit {
                throw StockwatchError.limitReached(kind: "device", limit: limit, key: "[serve] max_devices_per_user")
            }
            if let holder {
                try await Self.failWaiting(db, deviceIDs: [holder.0], reason: DeliveryReason.deviceMoved, now: now)
                try await db.execute("DELETE FROM devices WHERE id = \(holder.0)")
            }
            guard let (id) = try await db.value("""
                INSERT INTO devices (user_id, fcm_token, label, active, created_at, updated_at)
                VALUES (\(userID), \(token), \(label), TRUE, \(at), \(at)) RETURNING id
                """, Int64.self)
            else { throw StockwatchError.internal("device insert returned no id") }
            return try await Self.device(id: id, db)
        }
    }

    public func devices(user: String?, afterID: Int64?, limit: Int?) throws(StockwatchError) -> [DeviceJSON] {
        try read { db in
            let ownerID: Int64? = if let user { try await Self.existingUserID(user, db) } else { nil }
            return try await Self.devices(db, ownerID: ownerID, afterID: afterID, limit: limit)
        }
    }

    public func removeDevice(id: Int64, ownerID: Int64?, now: Date) throws(StockwatchError) {
        try write { db in
            guard try await db.value("""
                SELECT id FROM devices WHERE id = \(id) AND (\(ownerID)::BIGINT IS NULL OR user_id = \(ownerID)) FOR UPDATE
                """, Int64.self) != nil
            else { throw StockwatchError.notFound(kind: "device", id: String(id)) }
            try await Self.failWaiting(db, deviceIDs: [id], reason: DeliveryReason.deviceGone, now: now)
            try await db.execute("DELETE FROM devices WHERE id = \(id)")
        }
    }

    // MARK: Shared by the other domains' statements

    /// The id of the named user, or of `default` (created on first use) when no name is
    /// given; another unknown name is `notFound`. With `lock`, the user's row stays locked
    /// until the transaction ends, so per-user limits hold against concurrent requests.
    static func userID(_ name: String?, _ db: PostgresConnection, now: Date, lock: Bool = false) async throws -> Int64 {
        let name = name ?? UserRecord.defaultName
        let found = lock
            ? try await db.value("SELECT id FROM users WHERE name = \(name) FOR UPDATE", Int64.self)
            : try await db.value("SELECT id FROM users WHERE name = \(name)", Int64.self)
        if let id = found { return id }
        guard name == UserRecord.defaultName else { throw StockwatchError.notFound(kind: "user", id: name) }
        // A random hash nobody knows a token for: the default user is for the shell, not for serve.
        var bytes = SystemRandomNumberGenerator()
        let hash = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &bytes)) }.joined()
        // Two processes creating it at once: the second finds the first's row.
        try await db.execute("""
            INSERT INTO users (name, token_hash, created_at) VALUES (\(name), \(hash), \(now.milliseconds)) ON CONFLICT (name) DO NOTHING
            """)
        guard let id = try await db.value("SELECT id FROM users WHERE name = \(name) FOR UPDATE", Int64.self) else {
            throw StockwatchError.internal("the default user could not be created")
        }
        return id
    }

    /// For filters: an unknown name is an error, never a silent empty list.
    static func existingUserID(_ name: String, _ db: PostgresConnection) async throws -> Int64 {
        guard let id = try await db.value("SELECT id FROM users WHERE name = \(name)", Int64.self) else {
            throw StockwatchError.notFound(kind: "user", id: name)
        }
        return id
    }

    static func userNames(_ db: PostgresConnection) async throws -> [Int64: String] {
        Dictionary(uniqueKeysWithValues: try await db.rows("SELECT id, name FROM users", (Int64, String).self).map { ($0.0, $0.1) })
    }

    static func device(id: Int64, _ db: PostgresConnection) async throws -> DeviceJSON {
        guard let device = try await devices(db, id: id).first else { throw StockwatchError.notFound(kind: "device", id: String(id)) }
        return device
    }

    /// Devices with their user's name, by id; every argument narrows (nil: any).
    static func devices(_ db: PostgresConnection, id: Int64? = nil, ownerID: Int64? = nil, afterID: Int64? = nil, limit: Int? = nil) async throws -> [DeviceJSON] {
        try await db.rows("""
            SELECT d.id, u.name, d.fcm_token, d.label, d.active, d.deactivated_reason, d.created_at, d.updated_at
            FROM devices d JOIN users u ON u.id = d.user_id
            WHERE (\(id)::BIGINT IS NULL OR d.id = \(id)) AND (\(ownerID)::BIGINT IS NULL OR d.user_id = \(ownerID))
              AND (\(afterID)::BIGINT IS NULL OR d.id > \(afterID))
            ORDER BY d.id LIMIT \(limit.map(Int64.init))
            """, (Int64, String, String, String?, Bool, String?, Int64, Int64).self
        ).map {
            DeviceJSON(id: $0.0, user: $0.1, fcmToken: $0.2, label: $0.3, active: $0.4, deactivatedReason: $0.5,
                       createdAt: Date(milliseconds: $0.6), updatedAt: Date(milliseconds: $0.7))
        }
    }
}
