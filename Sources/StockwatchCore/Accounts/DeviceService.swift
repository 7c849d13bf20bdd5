import Foundation
import GRDB

/// The phones that receive push notifications, by their FCM registration token.
public struct DeviceService: Sendable {
    let database: AppDatabase

    public init(database: AppDatabase) { self.database = database }

    /// Registers a token, or refreshes it (owner, label, active again) when it is known:
    /// apps re-send their token on every start.
    /// `fields` name the culprit in errors: the CLI's flags, or the API's JSON fields.
    /// One word of 1 to 4096 bytes, as FCM registration tokens are.
    public static func isFCMToken(_ token: String) -> Bool {
        (1...4096).contains(token.utf8.count) && !token.contains(where: { $0.isWhitespace })
    }

    public func add(user: String?, fcmToken: String, label: String?, fields: (token: String, label: String) = ("--fcm-token", "--label"), now: Date = Date()) throws(StockwatchError) -> DeviceJSON {
        let token = fcmToken.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Self.isFCMToken(token) else {
            throw .invalidValue(option: fields.token, value: fcmToken, reason: "an FCM token is one word of at most 4096 bytes")
        }
        if let label, label.count > 200 {
            throw .invalidValue(option: fields.label, value: label, reason: "at most 200 characters")
        }
        return try database.write { db in
            let userID = try UserService.resolve(user, in: db, now: now)
            var device: DeviceRecord
            if var existing = try DeviceRecord.filter(Column("fcm_token") == token).fetchOne(db) {
                existing.userId = userID
                existing.label = label ?? existing.label
                existing.active = true
                existing.deactivatedReason = nil
                existing.updatedAt = now
                try existing.update(db)
                device = existing
            } else {
                device = DeviceRecord(userId: userID, fcmToken: token, label: label, active: true, createdAt: now, updatedAt: now)
                try device.insert(db)
            }
            return try Self.json(device, in: db)
        }
    }

    public func list(user: String?) throws(StockwatchError) -> [DeviceJSON] {
        try database.read { db in
            var request = DeviceRecord.order(Column("id"))
            if let user { request = request.filter(Column("user_id") == (try UserService.existingID(user, in: db))) }
            return try request.fetchAll(db).map { try Self.json($0, in: db) }
        }
    }

    /// With `ownerID`, another user's device is reported as not found (the API's scoping).
    public func remove(id: Int64, ownerID: Int64? = nil) throws(StockwatchError) {
        try database.write { db in
            var request = DeviceRecord.filter(key: id)
            if let ownerID { request = request.filter(Column("user_id") == ownerID) }
            guard try request.deleteAll(db) == 1 else {
                throw StockwatchError.notFound(kind: "device", id: String(id))
            }
        }
    }

    static func json(_ device: DeviceRecord, in db: Database) throws -> DeviceJSON {
        let user = try String.fetchOne(db, sql: "SELECT name FROM users WHERE id = ?", arguments: [device.userId]) ?? "?"
        return DeviceJSON(
            id: device.id!, user: user, fcmToken: device.fcmToken, label: device.label, active: device.active,
            deactivatedReason: device.deactivatedReason, createdAt: device.createdAt, updatedAt: device.updatedAt)
    }
}
