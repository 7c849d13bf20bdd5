import Foundation

/// What evaluate did, for `--json`, `-v` and tests.
public struct EvaluateReport: Encodable, Sendable {
    public struct Notification: Encodable, Sendable, Equatable {
        public var id: Int64
        public var alertId: Int64
        public var user: String
        public var symbol: String
        public var price: Double
        public var observedAt: Date
        public var message: String
        public var channels: [String]

        public init(id: Int64, alertId: Int64, user: String, symbol: String, price: Double, observedAt: Date, message: String, channels: [String]) {
            self.id = id
            self.alertId = alertId
            self.user = user
            self.symbol = symbol
            self.price = price
            self.observedAt = observedAt
            self.message = message
            self.channels = channels
        }

        enum CodingKeys: String, CodingKey {
            case id, user, symbol, price, message, channels
            case alertId = "alert_id"
            case observedAt = "observed_at"
        }
    }

    /// Active alerts that judged at least one fresh quote.
    public var evaluated = 0
    public var notifications: [Notification] = []
    /// Rise and fall alerts with no quote as old as their window, ascending.
    public var insufficientHistory: [Int64] = []
    /// Alerts that passed their `expires_at` in this run.
    public var expired: [Int64] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case evaluated, notifications
        case insufficientHistory = "insufficient_history"
    }
}
