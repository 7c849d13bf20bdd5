import Foundation
import StockwatchModel
import StockwatchStore

/// Adding, listing and changing alerts. Each change is one transaction.
public struct AlertService: Sendable {
    let database: any AlertStore & DailyHistoryStore
    let config: Config

    public init(database: any AlertStore & DailyHistoryStore, config: Config) {
        self.database = database
        self.config = config
    }

    /// Which alerts to list (the symbol as typed; it is made canonical here).
    public typealias Filter = AlertQuery

    public func add(_ input: AlertInput, now: Date = Date()) throws(StockwatchError) -> AlertJSON {
        try insert(try input.spec(config: config, now: now), now: now)
    }

    /// Adds an alert given as JSON (the API); errors name the JSON field. With
    /// `limitPerUser`, a user who has that many alerts gets `limitReached`.
    public func add(_ spec: AlertSpec, limitPerUser: Int? = nil, now: Date = Date()) throws(StockwatchError) -> AlertJSON {
        try insert(try spec.validated(config: config, now: now), limitPerUser: limitPerUser, now: now)
    }

    /// The alert's symbol when its rule needs daily history (since close, new high or low)
    /// that is not stored: none, or none reaching back over a new high's or low's window.
    /// Until `fetch --history` (or tick) brings it, the alert judges nothing.
    public func missingHistory(_ alert: AlertJSON, now: Date = Date()) throws(StockwatchError) -> String? {
        guard alert.condition.kind.needsDailyHistory else { return nil }
        guard let coverage = try database.dailyCoverage(symbols: [alert.symbol])[alert.symbol] else { return alert.symbol }
        guard let window = alert.condition.windowSeconds else { return nil }
        let today = MarketDay(symbol: alert.symbol).day(of: now)
        return MarketDay.reaches(oldest: coverage.oldest, windowSeconds: window, before: today) ? nil : alert.symbol
    }

    private func insert(_ spec: AlertSpec, limitPerUser: Int? = nil, now: Date) throws(StockwatchError) -> AlertJSON {
        guard let alert = try database.addAlerts([spec], limitPerUser: limitPerUser, now: now).first else {
            throw .internal("the store added no alert")
        }
        return alert
    }

    public func list(_ filter: Filter = Filter()) throws(StockwatchError) -> [AlertJSON] {
        try database.alerts(try canonical(filter))
    }

    /// The alerts of `filter`, ascending id, a page at a time: a caller that writes each page
    /// before the next is read (`alert list --json`) needs memory for one page, not all.
    /// Each page is its own read, so a list taken while alerts change may mix moments.
    public func forEachPage(
        _ filter: Filter = Filter(), pageSize: Int = 5_000, _ body: ([AlertJSON]) throws(StockwatchError) -> Void
    ) throws(StockwatchError) {
        var query = try canonical(filter)
        query.limit = pageSize
        while true {
            let page = try database.alerts(query)
            if !page.isEmpty { try body(page) }
            guard page.count == pageSize, let last = page.last?.id else { return }
            query.afterID = last
        }
    }

    /// The filter with its symbol as typed made canonical.
    private func canonical(_ filter: Filter) throws(StockwatchError) -> Filter {
        var query = filter
        query.symbol = try filter.symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "symbol").text }
        return query
    }

    /// With `ownerID`, another user's alert is reported as not found (the API's scoping).
    public func show(id: Int64, ownerID: Int64? = nil) throws(StockwatchError) -> AlertJSON {
        try database.alert(id: id, ownerID: ownerID)
    }

    /// All or nothing: one unknown id (or, with `ownerID`, another user's) removes none.
    public func remove(ids: [Int64], ownerID: Int64? = nil) throws(StockwatchError) {
        try database.removeAlerts(ids: ids, ownerID: ownerID)
    }

    /// Pausing an armed or firing alert stops evaluation; pausing a paused one changes nothing.
    /// With `ownerID`, another user's alert is not found (the API's scoping).
    public func pause(id: Int64, ownerID: Int64? = nil) throws(StockwatchError) -> AlertJSON {
        if let ownerID { _ = try database.alert(id: id, ownerID: ownerID) }  // an alert never changes owner
        return try database.changeAlertState(id: id) { alert throws(StockwatchError) in
            switch alert.state ?? .armed {
            case .armed, .firing, .paused: return .paused
            case let state: throw .usage("alert \(id) is \(state.rawValue); only armed or firing alerts can be paused")
            }
        }
    }

    /// The longest snooze: a year.
    public static let maximumSnooze: TimeInterval = 366 * 86_400

    /// Until `until`, the alert is judged but notifies nothing; nil ends a snooze. Errors
    /// name `option` and `typed` (what the user wrote; the time itself by default).
    public func snooze(id: Int64, until: Date?, ownerID: Int64? = nil, option: String = "until", typed: String? = nil, now: Date = Date()) throws(StockwatchError) -> AlertJSON {
        let alert = try database.alert(id: id, ownerID: ownerID)
        if let until {
            let shown = typed ?? until.formatted(.iso8601)
            guard until > now else { throw .invalidValue(option: option, value: shown, reason: "a snooze must end in the future") }
            guard until.timeIntervalSince(now) <= Self.maximumSnooze else {
                throw .invalidValue(option: option, value: shown, reason: "a snooze lasts at most a year")
            }
            switch alert.state ?? .armed {
            case .armed, .firing, .paused: break
            case let state: throw .usage("alert \(id) is \(state.rawValue); only armed, firing or paused alerts can be snoozed")
            }
        }
        return try database.snoozeAlert(id: id, until: until)
    }

    /// A resumed alert starts armed again (evaluate starts it at the newest quote).
    public func resume(id: Int64, ownerID: Int64? = nil, now: Date = Date()) throws(StockwatchError) -> AlertJSON {
        if let ownerID { _ = try database.alert(id: id, ownerID: ownerID) }
        return try database.changeAlertState(id: id) { alert throws(StockwatchError) in
            switch alert.state ?? .armed {
            case .paused: return (alert.expiresAt.map { $0 <= now } ?? false) ? .expired : .armed
            case .armed, .firing: return nil
            case let state: throw .usage("alert \(id) is \(state.rawValue); only paused alerts can be resumed")
            }
        }
    }
}
