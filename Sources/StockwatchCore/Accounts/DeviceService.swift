import Foundation
import GRDB
import StockwatchModel
import StockwatchStore

/// The phones that receive push notifications, by their FCM registration token.
public struct DeviceService: Sendable {
    let database: AppDatabase

    public init(database: AppDatabase) { self.database = database }

    /// One word of 1 to 4096 bytes, as FCM registration tokens are.
    public static func isFCMToken(_ token: String) -> Bool {
        (1...4096).contains(token.utf8.count) && !token.contains(where: { $0.isWhitespace })
    }

    /// Registers a token, or refreshes it (label, active again) when this user has it:
    /// apps re-send their token on every start. `fields` name the culprit in errors: the
    /// CLI's flags, or the API's JSON fields.
    /// With `limitPerUser`, a new device of a user who has that many gets `limitReached`.
    public func add(
        user: String?, fcmToken: String, label: String?, fields: (token: String, label: String) = ("--fcm-token", "--label"),
        limitPerUser: Int? = nil, now: Date = Date()
    ) throws(StockwatchError) -> DeviceJSON {
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
            if var existing = try DeviceRecord.filter(Column("fcm_token") == token).fetchOne(db), existing.userId == userID {
                existing.label = label ?? existing.label
                existing.active = true
                existing.deactivatedReason = nil
                existing.updatedAt = now
                try existing.update(db)
                device = existing
            } else {
                if let limit = limitPerUser, try DeviceRecord.filter(Column("user_id") == userID).fetchCount(db) >= limit {
                    throw StockwatchError.limitReached(kind: "device", limit: limit, key: "[serve] max_devices_per_user")
                }
                // A token another user registered (a shared phone, a new login) becomes a
                // new device: the previous owner's waiting deliveries to it end failed, and
                // neither its id nor its label carries over.
                if let previous = try DeviceRecord.filter(Column("fcm_token") == token).fetchOne(db) {
                    try DeliveryQueue.failWaiting(db, deviceIDs: [previous.id!], reason: DeliveryReason.deviceMoved, now: now)
                    _ = try previous.delete(db)
                }
                device = DeviceRecord(userId: userID, fcmToken: token, label: label, active: true, createdAt: now, updatedAt: now)
                try device.insert(db)
            }
            return try Self.json(device, in: db)
        }
    }

    /// All, or a page: ids above `afterID`, at most `limit` (the API's cursor).
    public func list(user: String?, afterID: Int64? = nil, limit: Int? = nil) throws(StockwatchError) -> [DeviceJSON] {
        try database.read { db in
            var request = DeviceRecord.order(Column("id"))
            if let user { request = request.filter(Column("user_id") == (try UserService.existingID(user, in: db))) }
            if let afterID { request = request.filter(Column("id") > afterID) }
            if let limit { request = request.limit(limit) }
            return try request.fetchAll(db).map { try Self.json($0, in: db) }
        }
    }

    /// With `ownerID`, another user's device is reported as not found (the API's scoping).
    /// Its waiting deliveries end failed, kept in history: they must never be sent later.
    public func remove(id: Int64, ownerID: Int64? = nil, now: Date = Date()) throws(StockwatchError) {
        try database.write { db in
            var request = DeviceRecord.filter(key: id)
            if let ownerID { request = request.filter(Column("user_id") == ownerID) }
            guard try request.fetchCount(db) == 1 else {
                throw StockwatchError.notFound(kind: "device", id: String(id))
            }
            try DeliveryQueue.failWaiting(db, deviceIDs: [id], reason: DeliveryReason.deviceGone, now: now)
            try request.deleteAll(db)
        }
    }

    static func json(_ device: DeviceRecord, in db: Database) throws -> DeviceJSON {
        let user = try String.fetchOne(db, sql: "SELECT name FROM users WHERE id = ?", arguments: [device.userId]) ?? "?"
        return DeviceJSON(
            id: device.id!, user: user, fcmToken: device.fcmToken, label: device.label, active: device.active,
            deactivatedReason: device.deactivatedReason, createdAt: device.createdAt, updatedAt: device.updatedAt)
    }
}
