import Foundation
import StockwatchModel

/// Which alerts to list: every field narrows; `afterID` and `limit` make a page.
public struct AlertQuery: Sendable {
    public var user: String?
    /// Canonical symbol text.
    public var symbol: String?
    public var state: AlertState?
    public var afterID: Int64?
    public var limit: Int?
    public init(user: String? = nil, symbol: String? = nil, state: AlertState? = nil, afterID: Int64? = nil, limit: Int? = nil) {
        self.user = user
        self.symbol = symbol
        self.state = state
        self.afterID = afterID
        self.limit = limit
    }
}

/// The users' rules.
public protocol AlertStore: Sendable {
    /// Stores validated alerts, all or none. A spec without a user belongs to the default
    /// user (created on first use); an unknown user is `notFound`. With `limitPerUser`, a
    /// user who would then have more alerts than that is `limitReached`. A new alert starts
    /// judging at its symbol's newest quote, so older history never fires it.
    func addAlerts(_ specs: [AlertSpec], limitPerUser: Int?, now: Date) throws(StockwatchError) -> [AlertJSON]
    /// By id; an unknown user in the query is `notFound`, never an empty list.
    func alerts(_ query: AlertQuery) throws(StockwatchError) -> [AlertJSON]
    /// With `ownerID`, another user's alert is `notFound` (the API's scoping).
    func alert(id: Int64, ownerID: Int64?) throws(StockwatchError) -> AlertJSON
    /// All or nothing: one unknown id (or, with `ownerID`, another user's) removes none.
    func removeAlerts(ids: [Int64], ownerID: Int64?) throws(StockwatchError)
    /// Moves an alert to the state `decide` returns (nil: unchanged), in one transaction.
    /// An alert that becomes armed starts judging again at its symbol's newest quote.
    func changeAlertState(id: Int64, _ decide: @Sendable (AlertJSON) throws(StockwatchError) -> AlertState?) throws(StockwatchError) -> AlertJSON
    /// Sets (or with nil ends) the alert's snooze and returns the alert.
    func snoozeAlert(id: Int64, until: Date?) throws(StockwatchError) -> AlertJSON
}
