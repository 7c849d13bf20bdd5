import Foundation
import GRDB

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

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    public var condition: Condition {
        Condition(kind: kind, value: value, percent: percent, windowSeconds: windowSeconds)!
    }
}

extension AlertRecord {
    /// Reads the columns directly: the Codable path converts every column name of every
    /// row from snake_case, which made `alert list` of 1,000 alerts three times slower.
    public init(row: Row) throws {
        func date(_ column: String) -> Date? { (row[column] as Int64?).map(Date.init(milliseconds:)) }
        id = row["id"]
        userId = row["user_id"]
        symbol = row["symbol"]
        kind = row["kind"]
        value = row["value"]
        percent = row["percent"]
        windowSeconds = row["window_seconds"]
        trigger = row["trigger"]
        cooldownSeconds = row["cooldown_seconds"]
        rearmMarginPercent = row["rearm_margin_percent"]
        let channelsJSON: String = row["channels"]
        channels = try Self.channelsDecoder.decode([String].self, from: Data(channelsJSON.utf8))
        state = row["state"]
        note = row["note"]
        createdAt = Date(milliseconds: row["created_at"])
        expiresAt = date("expires_at")
        lastFiredAt = date("last_fired_at")
        startAt = row["start_at"]
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
}

public struct NotificationRecord: StoredRecord, Identifiable {
    public static let databaseTableName = "notifications"
    public var id: Int64?
    public var alertId: Int64?
    public var userId: Int64
    public var quoteId: Int64?
    public var symbol: String
    public var price: Double
    public var observedAt: Date
    public var message: String
    public var createdAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public enum DeliveryStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case pending, sending, sent, retry, failed, dead
}

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
}
