import Foundation

/// What `status` reports, for people and monitoring checks.
public struct StatusReport: Encodable, Sendable {
    public struct Provider: Encodable, Sendable {
        public var name: String
        public var lastSuccessAt: Date?
        public var lastErrorAt: Date?
        public var lastError: String?
        public var consecutiveFailures: Int
        public var blockedUntil: Date?
        public var blockedReason: String?
        public init(name: String, lastSuccessAt: Date?, lastErrorAt: Date?, lastError: String?, consecutiveFailures: Int, blockedUntil: Date?, blockedReason: String?) {
            self.name = name
            self.lastSuccessAt = lastSuccessAt
            self.lastErrorAt = lastErrorAt
            self.lastError = lastError
            self.consecutiveFailures = consecutiveFailures
            self.blockedUntil = blockedUntil
            self.blockedReason = blockedReason
        }
        enum CodingKeys: String, CodingKey {
            case name, lastError = "last_error", lastSuccessAt = "last_success_at", lastErrorAt = "last_error_at"
            case consecutiveFailures = "consecutive_failures", blockedUntil = "blocked_until", blockedReason = "blocked_reason"
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(lastSuccessAt, forKey: .lastSuccessAt)
            try c.encode(lastErrorAt, forKey: .lastErrorAt)
            try c.encode(lastError, forKey: .lastError)
            try c.encode(consecutiveFailures, forKey: .consecutiveFailures)
            try c.encode(blockedUntil, forKey: .blockedUntil)
            try c.encode(blockedReason, forKey: .blockedReason)
        }
    }
    public struct StaleSymbol: Encodable, Sendable {
        public var symbol: String
        public var newestObservedAt: Date?
        public init(symbol: String, newestObservedAt: Date?) {
            self.symbol = symbol
            self.newestObservedAt = newestObservedAt
        }
        enum CodingKeys: String, CodingKey { case symbol, newestObservedAt = "newest_observed_at" }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(symbol, forKey: .symbol)
            try c.encode(newestObservedAt, forKey: .newestObservedAt)
        }
    }
    public struct Deliveries: Encodable, Sendable {
        public var counts: [String: Int] = [:]
        public var overdue = 0
        public var recentlyDead = 0
        public init() {}
        public func count(_ status: DeliveryStatus) -> Int { counts[status.rawValue] ?? 0 }
        enum CodingKeys: String, CodingKey { case overdue, recentlyDead = "recently_dead" }
        /// Every status appears, with 0 when there is none.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: DynamicKey.self)
            for status in DeliveryStatus.allCases { try c.encode(count(status), forKey: DynamicKey(status.rawValue)) }
            try c.encode(overdue, forKey: DynamicKey("overdue"))
            try c.encode(recentlyDead, forKey: DynamicKey("recently_dead"))
        }
    }
    public struct AttemptError: Encodable, Sendable {
        public var deliveryId: Int64
        public var channel: String
        public var attempt: Int
        public var at: Date
        public var outcome: String
        public var error: String?
        public init(deliveryId: Int64, channel: String, attempt: Int, at: Date, outcome: String, error: String?) {
            self.deliveryId = deliveryId
            self.channel = channel
            self.attempt = attempt
            self.at = at
            self.outcome = outcome
            self.error = error
        }
        enum CodingKeys: String, CodingKey { case deliveryId = "delivery_id", channel, attempt, at, outcome, error }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(deliveryId, forKey: .deliveryId)
            try c.encode(channel, forKey: .channel)
            try c.encode(attempt, forKey: .attempt)
            try c.encode(at, forKey: .at)
            try c.encode(outcome, forKey: .outcome)
            try c.encode(error, forKey: .error)
        }
    }
    public struct FCMToken: Encodable, Sendable {
        public var channel: String
        public var account: String?
        public var tokenExpiresAt: Date?
        public var problem: String?
        public init(channel: String, account: String?, tokenExpiresAt: Date?, problem: String?) {
            self.channel = channel
            self.account = account
            self.tokenExpiresAt = tokenExpiresAt
            self.problem = problem
        }
        enum CodingKeys: String, CodingKey { case channel, account, tokenExpiresAt = "token_expires_at", problem }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(channel, forKey: .channel)
            try c.encode(account, forKey: .account)
            try c.encode(tokenExpiresAt, forKey: .tokenExpiresAt)
            try c.encode(problem, forKey: .problem)
        }
    }
    public struct Database: Encodable, Sendable {
        public var path: String
        public var bytes: Int64
        public init(path: String, bytes: Int64) {
            self.path = path
            self.bytes = bytes
        }
    }

    public var providers: [Provider] = []
    public var staleSymbols: [StaleSymbol] = []
    public var deliveries = Deliveries()
    public var recentErrors: [AttemptError] = []
    public var fcm: [FCMToken] = []
    public var database: Database
    public var problems: [String] = []

    public var healthy: Bool { problems.isEmpty }

    public init(database: Database) { self.database = database }

    enum CodingKeys: String, CodingKey {
        case providers, deliveries, fcm, database, problems, healthy
        case staleSymbols = "stale_symbols", recentErrors = "recent_errors"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(healthy, forKey: .healthy)
        try c.encode(problems, forKey: .problems)
        try c.encode(providers, forKey: .providers)
        try c.encode(staleSymbols, forKey: .staleSymbols)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(recentErrors, forKey: .recentErrors)
        try c.encode(fcm, forKey: .fcm)
        try c.encode(database, forKey: .database)
    }
}

struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
