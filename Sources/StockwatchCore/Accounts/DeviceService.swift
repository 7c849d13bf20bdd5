import Foundation
import StockwatchModel
import StockwatchStore

/// The phones that receive push notifications, by their FCM registration token.
public struct DeviceService: Sendable {
    let database: any AccountStore

    public init(database: any AccountStore) { self.database = database }

    /// One word of 1 to 4096 printable ASCII characters (FCM's tokens are base64url and
    /// ':'), as openapi.yaml's pattern says: no whitespace, no control bytes.
    public static func isFCMToken(_ token: String) -> Bool {
        (1...4096).contains(token.utf8.count) && token.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// Registers a token, or refreshes it (label, active again) when this user has it:
    /// apps re-send their token on every start (see `AccountStore.registerDevice` for a
    /// token another user had). Errors name the JSON fields (the CLI renames them to its flags).
    public func add(
        user: String?, fcmToken: String, label: String?,
        limitPerUser: Int? = nil, now: Date = Date()
    ) throws(StockwatchError) -> DeviceJSON {
        // Exactly as given: the CLI trims what it reads (file or flag); the API takes the JSON string as is.
        let token = fcmToken
        guard Self.isFCMToken(token) else {
            throw .invalidValue(option: "fcm_token", value: fcmToken, reason: "an FCM token is one word of at most 4096 printable ASCII characters")
        }
        // Code points, as JSON Schema's maxLength counts them.
        if let label, label.unicodeScalars.count > 200 {
            throw .invalidValue(option: "label", value: label, reason: "at most 200 characters")
        }
        return try database.registerDevice(user: user, fcmToken: token, label: label, limitPerUser: limitPerUser, now: now)
    }

    /// All, or a page: ids above `afterID`, at most `limit` (the API's cursor).
    public func list(user: String?, afterID: Int64? = nil, limit: Int? = nil) throws(StockwatchError) -> [DeviceJSON] {
        try database.devices(user: user, afterID: afterID, limit: limit)
    }

    /// With `ownerID`, another user's device is reported as not found (the API's scoping).
    /// Its waiting deliveries end failed, kept in history: they must never be sent later.
    public func remove(id: Int64, ownerID: Int64? = nil, now: Date = Date()) throws(StockwatchError) {
        try database.removeDevice(id: id, ownerID: ownerID, now: now)
    }
}
