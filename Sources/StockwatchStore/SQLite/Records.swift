import Foundation
import GRDB
import StockwatchModel

/// One Codable record type per table. Columns are snake_case, times INTEGER milliseconds.
public protocol StoredRecord: Codable, FetchableRecord, MutablePersistableRecord, Sendable {}

extension StoredRecord {
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .millisecondsSince1970 }
    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .millisecondsSince1970 }
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
}

public struct UserRecord: StoredRecord, Identifiable {
    public static let databaseTableName = "users"
    public var id: Int64?
    public var name: String
    public var tokenHash: String
    public var createdAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public init(id: Int64? = nil, name: String, tokenHash: String, createdAt: Date) {
        self.id = id
        self.name = name
        self.tokenHash = tokenHash
        self.createdAt = createdAt
    }
}

public struct DeviceRecord: StoredRecord, Identifiable {
    public static let databaseTableName = "devices"
    public var id: Int64?
    public var userId: Int64
    public var fcmToken: String
    public var label: String?
    public var active: Bool
    public var deactivatedReason: String?
    public var createdAt: Date
    public var updatedAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public init(id: Int64? = nil, userId: Int64, fcmToken: String, label: String? = nil, active: Bool, deactivatedReason: String? = nil, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.userId = userId
        self.fcmToken = fcmToken
        self.label = label
        self.active = active
        self.deactivatedReason = deactivatedReason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

public struct AlertRecord: StoredRecord, Identifiable {
    public static let databaseTableName = "alerts"
    public var id: Int64?
    public var userId: Int64
    public var symbol: String
    public var kind: ConditionKind
    public var value: Double?
    public var percent: Double?
    public var windowSeconds: Int64?
    public var trigger: AlertTrigger
    public var cooldownSeconds: Int64
    public var rearmMarginPercent: Double
    /// Stored as a JSON array; GRDB encodes nested Codable values as JSON text.
    public var channels: [String]
    public var state: AlertState
    public var note: String?
    public var createdAt: Date
    public var expiresAt: Date?
    public var lastFiredAt: Date?
    /// Observed time (ms) from which a new or resumed alert judges quotes; nil once it
    /// follows its symbol's `evaluation_progress`.
    public var startAt: Int64?
    public var snoozedUntil: Date?
    public var schedule: String?
    /// A trailing rule's running peak or low (see `AlertMachine.trailingFrom`), kept in
    /// `alert_trails` beside the alert: not a column of `alerts`, so not persisted with it.
    public var trailingFrom: Double?

    enum CodingKeys: String, CodingKey {
        case id, userId, symbol, kind, value, percent, windowSeconds, trigger, cooldownSeconds, rearmMarginPercent, channels, state, note
        case createdAt, expiresAt, lastFiredAt, startAt, snoozedUntil, schedule
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public var condition: Condition {
        Condition(kind: kind, value: value, percent: percent, windowSeconds: windowSeconds)!
    }

    public init(id: Int64? = nil, userId: Int64, symbol: String, kind: ConditionKind, value: Double? = nil, percent: Double? = nil, windowSeconds: Int64? = nil, trigger: AlertTrigger, cooldownSeconds: Int64, rearmMarginPercent: Double, channels: [String], state: AlertState, note: String? = nil, createdAt: Date, expiresAt: Date? = nil, lastFiredAt: Date? = nil, startAt: Int64? = nil, snoozedUntil: Date? = nil, schedule: String? = nil, trailingFrom: Double? = nil) {
        self.trailingFrom = trailingFrom
        self.schedule = schedule
        self.snoozedUntil = snoozedUntil
        self.id = id
        self.userId = userId
        self.symbol = symbol
        self.kind = kind
        self.value = value
        self.percent = percent
        self.windowSeconds = windowSeconds
        self.trigger = trigger
        self.cooldownSeconds = cooldownSeconds
        self.rearmMarginPercent = rearmMarginPercent
        self.channels = channels
        self.state = state
        self.note = note
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastFiredAt = lastFiredAt
        self.startAt = startAt
    }
}

extension AlertRecord {
    /// Reads the columns directly: the Codable path converts every column name of every
    /// row from snake_case, which made `alert list` of 1,000 alerts three times slower.
    /// Every request for alerts selects these columns in this order, so a row is read by
    /// position: by name, each of 19 columns is a hashed lookup, half of the time of
    /// `alert list --json` over 100,000 alerts. The state and the last firing are computed
    /// (AlertRecord+Derived.swift).
    static let selectedColumns = [
        "id", "user_id", "symbol", "kind", "value", "percent", "window_seconds", "trigger", "cooldown_seconds",
        "rearm_margin_percent", "channels", "\(state(of: "alerts")) AS state", "note", "created_at", "expires_at",
        "\(lastFiredAt(of: "alerts")) AS last_fired_at", "start_at", "snoozed_until", "schedule",
        "(SELECT t.trailing_from FROM alert_trails t WHERE t.alert_id = alerts.id) AS trailing_from",
    ]

    public static var databaseSelection: [any SQLSelectable] { selectedColumns.map { SQL(sql: $0) } }

    public init(row: Row) throws { try self.init(columns: row) }

    /// One decoder for a GRDB row and for a statement stepped through the C API (the list
    /// of every alert, where reading through `Row` was a third of `alert list --json`).
    init(columns row: some ColumnReader) throws {
        func date(_ index: Int32) -> Date? { row.optionalInt64(index).map(Date.init(milliseconds:)) }
        func stored<Value: RawRepresentable<String>>(_ index: Int32) throws -> Value {
            guard let value = Value(rawValue: row.string(index)) else {
                throw DatabaseError(resultCode: .SQLITE_MISMATCH, message: "alerts: \(Value.self) '\(row.string(index))'")
            }
            return value
        }
        id = row.int64(0)
        userId = row.int64(1)
        symbol = row.string(2)
        kind = try stored(3)
        value = row.optionalDouble(4)
        percent = row.optionalDouble(5)
        windowSeconds = row.optionalInt64(6)
        trigger = try stored(7)
        cooldownSeconds = row.int64(8)
        rearmMarginPercent = row.double(9)
        channels = try Self.channels(row.string(10))
        state = try stored(11)
        note = row.optionalString(12)
        createdAt = Date(milliseconds: row.int64(13))
        expiresAt = date(14)
        lastFiredAt = date(15)
        startAt = row.optionalInt64(16)
        snoozedUntil = date(17)
        schedule = row.optionalString(18)
        trailingFrom = row.optionalDouble(19)
    }

    /// The stored JSON array of names; the common one-name form without a decoder.
    static func channels(_ json: String) throws -> [String] {
        let utf8 = json.utf8
        if utf8.count >= 4, utf8.first == UInt8(ascii: "["), utf8.last == UInt8(ascii: "]") {
            let inner = utf8.dropFirst().dropLast()
            if inner.first == UInt8(ascii: "\""), inner.last == UInt8(ascii: "\""),
               !inner.dropFirst().dropLast().contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }) {
                return [String(decoding: inner.dropFirst().dropLast(), as: UTF8.self)]
            }
        }
        return try channelsDecoder.decode([String].self, from: Data(utf8))
    }

    private static let channelsDecoder = JSONDecoder()
}

public struct QuoteRecord: StoredRecord, Identifiable {
    public static let databaseTableName = "quotes"
    public var id: Int64?
    public var symbol: String
    public var price: Double
    public var provider: String
    public var observedAt: Date
    public var fetchedAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public init(id: Int64? = nil, symbol: String, price: Double, provider: String, observedAt: Date, fetchedAt: Date) {
        self.id = id
        self.symbol = symbol
        self.price = price
        self.provider = provider
        self.observedAt = observedAt
        self.fetchedAt = fetchedAt
    }
}

public struct NotificationRecord: StoredRecord, Identifiable {
    public static let databaseTableName = "notifications"
    public var id: Int64?
    public var alertId: Int64?
    public var userId: Int64
    public var symbol: String
    public var price: Double
    public var observedAt: Date
    public var message: String
    public var createdAt: Date
    public var state: NotificationState = .unread
    public var stateChangedAt: Date?
    public var stateDeviceId: Int64?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public init(id: Int64? = nil, alertId: Int64? = nil, userId: Int64, symbol: String, price: Double, observedAt: Date, message: String, createdAt: Date) {
        self.id = id
        self.alertId = alertId
        self.userId = userId
        self.symbol = symbol
        self.price = price
        self.observedAt = observedAt
        self.message = message
        self.createdAt = createdAt
    }
}

/// A provider's budget, persisted because every cron tick is a new process. The rules
/// that change it are fetch's (ProviderBudget.swift in the core).
public struct ProviderStateRecord: StoredRecord {
    public static let databaseTableName = "provider_state"
    public var provider: String
    public var lastSuccessAt: Date?
    public var lastErrorAt: Date?
    public var lastError: String?
    public var consecutiveFailures: Int = 0
    public var blockedUntil: Date?
    public var blockedReason: String?

    public init(provider: String, lastSuccessAt: Date? = nil, lastErrorAt: Date? = nil, lastError: String? = nil, consecutiveFailures: Int = 0, blockedUntil: Date? = nil, blockedReason: String? = nil) {
        self.provider = provider
        self.lastSuccessAt = lastSuccessAt
        self.lastErrorAt = lastErrorAt
        self.lastError = lastError
        self.consecutiveFailures = consecutiveFailures
        self.blockedUntil = blockedUntil
        self.blockedReason = blockedReason
    }
}

// The model's enums are stored as their raw text.
extension ConditionKind: DatabaseValueConvertible {}
extension AlertTrigger: DatabaseValueConvertible {}
extension AlertState: DatabaseValueConvertible {}
extension DeliveryStatus: DatabaseValueConvertible {}
extension NotificationState: DatabaseValueConvertible {}

public struct DeliveryRecord: StoredRecord, Identifiable {
    public static let databaseTableName = "deliveries"
    public var id: Int64?
    public var notificationId: Int64
    public var channel: String
    public var target: String?
    /// fcm: the device of a fanned-out delivery (a foreign key; NULL once it is removed).
    public var deviceId: Int64?
    public var status: DeliveryStatus
    public var attempts: Int
    public var nextAttemptAt: Date
    public var leaseUntil: Date?
    public var lastError: String?
    public var createdAt: Date
    public var updatedAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public init(id: Int64? = nil, notificationId: Int64, channel: String, target: String? = nil, deviceId: Int64? = nil, status: DeliveryStatus, attempts: Int, nextAttemptAt: Date, leaseUntil: Date? = nil, lastError: String? = nil, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.notificationId = notificationId
        self.channel = channel
        self.target = target
        self.deviceId = deviceId
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.leaseUntil = leaseUntil
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

extension AlertJSON {
    public init(_ alert: AlertRecord, user: String) {
        self.init(
            id: alert.id, user: user, symbol: alert.symbol, condition: ConditionJSON(alert.condition), trigger: alert.trigger,
            cooldownSeconds: alert.cooldownSeconds, rearmMarginPercent: alert.rearmMarginPercent, channels: alert.channels,
            state: alert.state, createdAt: alert.createdAt, lastFiredAt: alert.lastFiredAt, expiresAt: alert.expiresAt, note: alert.note,
            snoozedUntil: alert.snoozedUntil, schedule: alert.schedule, trailingFrom: alert.trailingFrom)
    }
}

/// One finished attempt of a delivery: history's and status's record of what happened.
public struct DeliveryAttemptRecord: StoredRecord, Identifiable {
    public static let databaseTableName = "delivery_attempts"
    public var id: Int64?
    public var deliveryId: Int64
    public var attempt: Int
    public var finishedAt: Date
    public var outcome: DeliveryStatus
    public var error: String?

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// The cached OAuth access token of one FCM service account.
public struct AccessTokenRecord: StoredRecord {
    public static let databaseTableName = "access_tokens"
    public var account: String
    public var token: String
    public var expiresAt: Date
}

/// The newest quote time evaluate has judged, per symbol (its watermark), and the price
/// of the last quote it judged as current (migration v19; NULL until one is judged).
public struct EvaluationProgressRecord: StoredRecord {
    public static let databaseTableName = "evaluation_progress"
    public var symbol: String
    public var observedAt: Int64
    public var judgedPrice: Double?
}

/// A symbol's no-data back-off: how many no-data answers in a row, and the next try.
public struct SymbolFetchStateRecord: StoredRecord {
    public static let databaseTableName = "symbol_fetch_state"
    public var symbol: String
    public var noDataCount: Int
    public var retryAt: Date
    public var lastReason: String?
}

// Requests used in more than one place.

/// Records with a `user_id` column: what a user owns.
public protocol UserOwnedRecord {}
extension AlertRecord: UserOwnedRecord {}
extension DeviceRecord: UserOwnedRecord {}
extension NotificationRecord: UserOwnedRecord {}

extension DerivableRequest where RowDecoder: UserOwnedRecord {
    func owned(by userID: Int64) -> Self { filter(Column("user_id") == userID) }
}

/// Records with a `symbol` column.
public protocol SymbolRecord {}
extension AlertRecord: SymbolRecord {}
extension QuoteRecord: SymbolRecord {}
extension NotificationRecord: SymbolRecord {}

extension DerivableRequest where RowDecoder: SymbolRecord {
    func on(symbol: String) -> Self { filter(Column("symbol") == symbol) }
}

extension UserOwnedRecord where Self: TableRecord {
    static func owned(by userID: Int64) -> QueryInterfaceRequest<Self> { all().owned(by: userID) }
}

extension SymbolRecord where Self: TableRecord {
    static func on(symbol: String) -> QueryInterfaceRequest<Self> { all().on(symbol: symbol) }
}
