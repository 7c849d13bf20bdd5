import Foundation

/// A typed alert, from the command line, an import file or the API, before it is stored.
public struct AlertSpec: Sendable, Equatable {
    public var user: String?
    public var symbol: String
    public var condition: Condition
    public var trigger: AlertTrigger = .rearm
    public var cooldownSeconds: Int64 = 0
    public var rearmMarginPercent: Double = 0
    /// nil means the config's `[alerts] default_notify`.
    public var channels: [String]?
    public var expiresAt: Date?
    public var note: String?
    public var state: AlertState = .armed
    /// `mon-fri 09:30-16:00` on the user's clock: outside it the alert notifies nothing.
    public var schedule: String?

    public init(symbol: String, condition: Condition) {
        self.symbol = symbol
        self.condition = condition
    }
}
