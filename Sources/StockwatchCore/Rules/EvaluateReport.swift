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

    enum CodingKeys: String, CodingKey {
        case evaluated, notifications
        case insufficientHistory = "insufficient_history"
    }
}
