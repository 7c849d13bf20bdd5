import Foundation

/// The values commands print with --json, the API answers and the store returns.
public struct AlertJSON: Codable, Sendable, Equatable {
    public struct ConditionJSON: Codable, Sendable, Equatable {
        public var kind: ConditionKind
        public var value: Double?
        public var percent: Double?
        public var windowSeconds: Int64?

        enum CodingKeys: String, CodingKey { case kind, value, percent, windowSeconds = "window_seconds" }

        /// The condition's short human form (see `Condition.summary`).
        public var summary: String {
            Condition(kind: kind, value: value, percent: percent, windowSeconds: windowSeconds)?.summary ?? kind.rawValue
        }

        public init(kind: ConditionKind, value: Double? = nil, percent: Double? = nil, windowSeconds: Int64? = nil) {
            self.kind = kind
            self.value = value
            self.percent = percent
            self.windowSeconds = windowSeconds
        }

        public init(_ condition: Condition) {
            kind = condition.kind
            value = condition.value
            percent = condition.percent
            windowSeconds = condition.windowSeconds
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(kind, forKey: .kind)
            try c.encodeIfPresent(value, forKey: .value)
            try c.encodeIfPresent(percent, forKey: .percent)
            try c.encodeIfPresent(windowSeconds, forKey: .windowSeconds)
        }
    }

    public init(
        id: Int64? = nil, user: String? = nil, symbol: String, condition: ConditionJSON, trigger: AlertTrigger? = nil, cooldownSeconds: Int64? = nil,
        rearmMarginPercent: Double? = nil, channels: [String]? = nil, state: AlertState? = nil, createdAt: Date? = nil, lastFiredAt: Date? = nil,
        expiresAt: Date? = nil, note: String? = nil, snoozedUntil: Date? = nil, schedule: String? = nil, trailingFrom: Double? = nil
    ) {
        self.trailingFrom = trailingFrom
        self.schedule = schedule
        self.snoozedUntil = snoozedUntil
        self.id = id
        self.user = user
        self.symbol = symbol
        self.condition = condition
        self.trigger = trigger
        self.cooldownSeconds = cooldownSeconds
        self.rearmMarginPercent = rearmMarginPercent
        self.channels = channels
        self.state = state
        self.createdAt = createdAt
        self.lastFiredAt = lastFiredAt
        self.expiresAt = expiresAt
        self.note = note
    }

    public var id: Int64?
    public var user: String?
    public var symbol: String
    public var condition: ConditionJSON
    public var trigger: AlertTrigger?
    public var cooldownSeconds: Int64?
    public var rearmMarginPercent: Double?
    public var channels: [String]?
    public var state: AlertState?
    public var createdAt: Date?
    public var lastFiredAt: Date?
    public var expiresAt: Date?
    public var note: String?
    /// Until when a firing notifies nothing (`alert snooze`); a past time: no longer.
    public var snoozedUntil: Date?
    /// When it may notify, on its user's clock (`mon-fri 09:30-16:00`); null: always.
    public var schedule: String?
    /// A trailing rule's running peak (trailing_fall) or low (trailing_rise) since it was
    /// armed; null for other rules and before its first price. Read only: import and the
    /// API start a trail at the next price.
    public var trailingFrom: Double?

    enum CodingKeys: String, CodingKey {
        case id, user, symbol, condition, trigger, channels, state, note, schedule
        case trailingFrom = "trailing_from"
        case cooldownSeconds = "cooldown_seconds"
        case rearmMarginPercent = "rearm_margin_percent"
        case createdAt = "created_at"
        case lastFiredAt = "last_fired_at"
        case expiresAt = "expires_at"
        case snoozedUntil = "snoozed_until"
    }

    /// Every key always present (null when absent), so scripts can rely on the shape.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(user, forKey: .user)
        try c.encode(symbol, forKey: .symbol)
        try c.encode(condition, forKey: .condition)
        try c.encode(trigger, forKey: .trigger)
        try c.encode(cooldownSeconds, forKey: .cooldownSeconds)
        try c.encode(rearmMarginPercent, forKey: .rearmMarginPercent)
        try c.encode(channels, forKey: .channels)
        try c.encode(state, forKey: .state)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(lastFiredAt, forKey: .lastFiredAt)
        try c.encode(expiresAt, forKey: .expiresAt)
        try c.encode(note, forKey: .note)
        try c.encode(snoozedUntil, forKey: .snoozedUntil)
        try c.encode(schedule, forKey: .schedule)
        try c.encode(trailingFrom, forKey: .trailingFrom)
    }
}

public struct UserJSON: Encodable, Sendable {

    public init(id: Int64, name: String, createdAt: Date, alerts: Int, devices: Int, timezone: String = UserTimeZone.defaultName, quietHours: String? = nil) {
        self.timezone = timezone
        self.quietHours = quietHours
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.alerts = alerts
        self.devices = devices
    }
    public var id: Int64
    public var name: String
    public var createdAt: Date
    public var alerts: Int
    public var devices: Int
    /// An IANA name; quiet hours and schedules are read on its clock.
    public var timezone: String
    /// `22:00-07:00`, or nil for none.
    public var quietHours: String?
    enum CodingKeys: String, CodingKey { case id, name, alerts, devices, timezone, createdAt = "created_at", quietHours = "quiet_hours" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(alerts, forKey: .alerts)
        try c.encode(devices, forKey: .devices)
        try c.encode(timezone, forKey: .timezone)
        try c.encode(quietHours, forKey: .quietHours)
    }
}

public struct NewUserJSON: Encodable, Sendable {

    public init(user: UserJSON, token: String) {
        self.user = user
        self.token = token
    }
    public var user: UserJSON
    /// Shown once; only its hash is stored.
    public var token: String
}

public struct DeviceJSON: Encodable, Sendable {

    public init(id: Int64, user: String, fcmToken: String, label: String? = nil, active: Bool, deactivatedReason: String? = nil, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.user = user
        self.fcmToken = fcmToken
        self.label = label
        self.active = active
        self.deactivatedReason = deactivatedReason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
    public var id: Int64
    public var user: String
    public var fcmToken: String
    public var label: String?
    public var active: Bool
    public var deactivatedReason: String?
    public var createdAt: Date
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, user, label, active
        case fcmToken = "fcm_token"
        case deactivatedReason = "deactivated_reason"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(user, forKey: .user)
        try c.encode(fcmToken, forKey: .fcmToken)
        try c.encode(label, forKey: .label)
        try c.encode(active, forKey: .active)
        try c.encode(deactivatedReason, forKey: .deactivatedReason)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
    }
}

public struct QuoteJSON: Encodable, Sendable {

    public init(symbol: String, price: Double, provider: String, observedAt: Date) {
        self.symbol = symbol
        self.price = price
        self.provider = provider
        self.observedAt = observedAt
    }
    public var symbol: String
    public var price: Double
    public var provider: String
    public var observedAt: Date
    enum CodingKeys: String, CodingKey { case symbol, price, provider, observedAt = "observed_at" }
}

public struct DeliveryJSON: Encodable, Sendable {

    public init(id: Int64, notificationId: Int64, channel: String, target: String? = nil, status: DeliveryStatus, attempts: Int, error: String? = nil) {
        self.id = id
        self.notificationId = notificationId
        self.channel = channel
        self.target = target
        self.status = status
        self.attempts = attempts
        self.error = error
    }
    public var id: Int64
    public var notificationId: Int64
    public var channel: String
    public var target: String?
    public var status: DeliveryStatus
    public var attempts: Int
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case id, channel, target, status, attempts, error
        case notificationId = "notification_id"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(notificationId, forKey: .notificationId)
        try c.encode(channel, forKey: .channel)
        try c.encode(target, forKey: .target)
        try c.encode(status, forKey: .status)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(error, forKey: .error)
    }
}

extension DeliveryJSON {
    /// What an app user is shown of a delivery: a short reason instead of the detail
    /// (token URIs, receivers' answers, the host's clock), which stays in the admin's
    /// `history`.
    public var forApp: DeliveryJSON {
        var copy = self
        guard let error, !DeliveryReason.shownToApps.contains(error) else { return copy }
        switch status {
        case .retry, .sending, .pending: copy.error = "not delivered yet; will retry"
        case .dead: copy.error = "not delivered after \(attempts) attempts"
        case .failed, .sent: copy.error = "not delivered"
        }
        return copy
    }
}

extension DeviceJSON {
    /// The API's view: why a device was deactivated without FCM's own words, which may
    /// name the Firebase project; `device list` keeps them for the admin.
    public var forApp: DeviceJSON {
        var copy = self
        if copy.deactivatedReason != nil { copy.deactivatedReason = "the push service no longer accepts this device's token" }
        return copy
    }
}

extension NotificationJSON {
    /// The API's and the stream's view: deliveries with app-level reasons only.
    public var forApp: NotificationJSON {
        var copy = self
        copy.deliveries = deliveries.map(\.forApp)
        return copy
    }
}

public struct NotificationJSON: Encodable, Sendable {

    public init(
        id: Int64, alertId: Int64? = nil, user: String, symbol: String, price: Double, observedAt: Date, message: String, createdAt: Date, deliveries: [DeliveryJSON],
        state: NotificationState = .unread, stateChangedAt: Date? = nil, stateDeviceId: Int64? = nil
    ) {
        self.id = id
        self.state = state
        self.stateChangedAt = stateChangedAt
        self.stateDeviceId = stateDeviceId
        self.alertId = alertId
        self.user = user
        self.symbol = symbol
        self.price = price
        self.observedAt = observedAt
        self.message = message
        self.createdAt = createdAt
        self.deliveries = deliveries
    }
    public var id: Int64
    public var alertId: Int64?
    public var user: String
    public var symbol: String
    public var price: Double
    public var observedAt: Date
    public var message: String
    public var createdAt: Date
    public var deliveries: [DeliveryJSON]
    public var state: NotificationState
    /// When and from which of the user's devices the app last changed `state`.
    public var stateChangedAt: Date?
    public var stateDeviceId: Int64?

    enum CodingKeys: String, CodingKey {
        case id, user, symbol, price, message, deliveries, state
        case alertId = "alert_id"
        case observedAt = "observed_at"
        case createdAt = "created_at"
        case stateChangedAt = "state_changed_at"
        case stateDeviceId = "state_device_id"
    }

    /// The receivers' object (webhook, exec, stream) plus what history adds.
    public func encode(to encoder: any Encoder) throws {
        let payload = NotificationPayload(id: id, alertId: alertId, user: user, symbol: symbol, price: price, observedAt: observedAt, message: message)
        try payload.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(state, forKey: .state)
        try c.encodeIfPresent(stateChangedAt, forKey: .stateChangedAt)
        try c.encodeIfPresent(stateDeviceId, forKey: .stateDeviceId)
    }
}
