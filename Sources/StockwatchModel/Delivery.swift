import Foundation

public enum DeliveryStatus: String, Codable, Sendable, CaseIterable {
    case pending, sending, sent, retry, failed, dead
}

/// Why a delivery ended without a send; an app user may read these as they are.
public enum DeliveryReason {
    public static let deviceGone = "the device was removed while this delivery waited"
    public static let deviceMoved = "the device's FCM token was registered by another user while this delivery waited"
    public static let noDevice = "user has no active device (register one with 'stockwatch device add' or the app)"
    public static let shownToApps: Set<String> = [deviceGone, deviceMoved, noDevice]
}

/// One claimed delivery with everything a channel needs to send it.
public struct DeliveryJob: Sendable {
    public var deliveryID: Int64
    /// The attempt this claim is (1 for the first); also the fencing token that stops a
    /// run whose lease expired from overwriting the outcome of the run that took over.
    public var attempt: Int
    public var channel: String
    public var target: String?
    public var notification: NotificationPayload
    /// fcm: the device this delivery is for.
    public var device: Device?

    public struct Device: Sendable {
        public var id: Int64
        public var fcmToken: String
        public var active: Bool

        public init(id: Int64, fcmToken: String, active: Bool) {
            self.id = id
            self.fcmToken = fcmToken
            self.active = active
        }
    }

    /// It waited for the end of its user's quiet hours (a first attempt that a hold gave
    /// back with its reason).
    public var heldForQuietHours = false
    /// Other held deliveries to the same device sent with this one as one digest push; each
    /// gets this one's outcome.
    public var companions: [DeliveryJob] = []
    /// fcm: the user's unread notifications when claimed, the iOS badge.
    public var badge: Int?

    public init(deliveryID: Int64, attempt: Int, channel: String, target: String? = nil, notification: NotificationPayload, device: Device? = nil, heldForQuietHours: Bool = false) {
        self.heldForQuietHours = heldForQuietHours
        self.deliveryID = deliveryID
        self.attempt = attempt
        self.channel = channel
        self.target = target
        self.notification = notification
        self.device = device
    }
}

/// The notification as receivers see it: webhook and exec bodies, FCM data, the
/// WebSocket stream. `id` is the same everywhere, so a receiver can drop duplicates.
public struct NotificationPayload: Codable, Sendable, Equatable {
    public var id: Int64
    public var alertId: Int64?
    public var user: String
    public var symbol: String
    public var price: Double
    public var observedAt: Date
    public var message: String

    enum CodingKeys: String, CodingKey {
        case id, user, symbol, price, message
        case alertId = "alert_id"
        case observedAt = "observed_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(alertId, forKey: .alertId)
        try c.encode(user, forKey: .user)
        try c.encode(symbol, forKey: .symbol)
        try c.encode(price, forKey: .price)
        try c.encode(observedAt, forKey: .observedAt)
        try c.encode(message, forKey: .message)
    }

    public var json: Data { Data(JSONOutput.encode(self).utf8) }

    public init(id: Int64, alertId: Int64? = nil, user: String, symbol: String, price: Double, observedAt: Date, message: String) {
        self.id = id
        self.alertId = alertId
        self.user = user
        self.symbol = symbol
        self.price = price
        self.observedAt = observedAt
        self.message = message
    }
}

/// What one send attempt came to.
public struct SendResult: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Accepted by the receiver.
        case sent
        /// Try again later (no earlier than `retryAfter` when the receiver said so).
        case retry
        /// Never retried: the receiver refused it for good.
        case failed
    }

    public var kind: Kind
    public var error: String?
    public var retryAfter: TimeInterval?
    /// fcm: the device's token is dead; deactivate the device.
    public var deactivateDevice = false

    public static let sent = SendResult(kind: .sent)
    public static func retry(_ error: String, after: TimeInterval? = nil) -> SendResult {
        SendResult(kind: .retry, error: error, retryAfter: after)
    }
    public static func failed(_ error: String, deactivateDevice: Bool = false) -> SendResult {
        SendResult(kind: .failed, error: error, deactivateDevice: deactivateDevice)
    }
}

/// Exponential backoff with full jitter (AWS's "Exponential Backoff and Jitter"): a random
/// delay between 0 and min(cap, base × 2^(attempt−1)), so that many deliveries failing
/// together do not come back together.
public struct Backoff: Sendable {
    public var baseSeconds: Int64
    public var capSeconds: Int64

    public init(baseSeconds: Int64, capSeconds: Int64) {
        self.baseSeconds = baseSeconds
        self.capSeconds = capSeconds
    }

    /// The ceiling of the delay after the given failed attempt (1-based).
    public func ceiling(afterAttempt attempt: Int) -> TimeInterval {
        let exponent = min(max(attempt - 1, 0), 40)
        let grown = Double(baseSeconds) * pow(2, Double(exponent))
        return min(Double(capSeconds), grown)
    }

    /// The delay before the next attempt; never shorter than what the receiver asked for.
    public func delay(afterAttempt attempt: Int, retryAfter: TimeInterval?, using random: inout some RandomNumberGenerator) -> TimeInterval {
        let jittered = Double.random(in: 0...ceiling(afterAttempt: attempt), using: &random)
        return max(jittered, retryAfter ?? 0)
    }
}
