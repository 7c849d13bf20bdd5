import Foundation
import StockwatchModel
import StockwatchStore

/// What has happened: notifications (newest first, with their deliveries) and stored quotes.
public struct HistoryService: Sendable {
    let database: any OutboxStore & QuoteStore & AccountStore & StreamStore & NotificationStateStore & DailyHistoryStore

    public init(database: any OutboxStore & QuoteStore & AccountStore & StreamStore & NotificationStateStore & DailyHistoryStore) { self.database = database }

    /// Which notifications to list (the symbol as typed; it is made canonical here).
    public typealias Filter = NotificationQuery

    public func notifications(_ filter: Filter) throws(StockwatchError) -> [NotificationJSON] {
        var query = filter
        query.symbol = try filter.symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "symbol").text }
        return try database.notifications(query)
    }

    /// The app read or dismissed some of its user's notifications: the ids that moved, the
    /// others were there already (see `NotificationState.movesFrom`).
    public func mark(_ selection: NotificationSelection, as state: NotificationState, userID: Int64, deviceID: Int64?, now: Date = Date()) throws(StockwatchError) -> [Int64] {
        if case .ids(let ids) = selection, !(1...Self.maximumMarked).contains(ids.count) {
            throw StockwatchError.invalidValue(option: "ids", value: "\(ids.count) ids", reason: "give 1 to \(Self.maximumMarked) ids, or up_to")
        }
        guard state != .unread else {
            throw StockwatchError.invalidValue(option: "state", value: state.rawValue, reason: "a notification can be marked read or dismissed")
        }
        return try database.setNotificationState(userID: userID, selection, to: state, deviceID: deviceID, now: now)
    }

    /// The most ids one change names (the API's page size).
    public static let maximumMarked = 500

    public func unreadCount(userID: Int64) throws(StockwatchError) -> Int { try database.unreadCount(userID: userID) }

    /// Where a stream that starts now starts: after everything committed so far.
    public func streamStart() throws(StockwatchError) -> StreamPosition { try database.streamStart() }

    /// Quotes and notifications committed after `position`, in commit order: what `serve`
    /// streams.
    public func streamBatch(after position: StreamPosition, limit: Int) throws(StockwatchError) -> StreamBatch {
        try database.streamBatch(after: position, limit: limit)
    }

    /// Wake-ups when another process commits quotes or notifications (nil: poll).
    public func watchStream(_ wake: @escaping @Sendable () -> Void) async throws(StockwatchError) -> (any StoreWatch)? {
        try await database.watchStream(wake)
    }

    /// Every user's token hash, by user id: `serve` closes the streams of removed users.
    public func userTokens() throws(StockwatchError) -> [Int64: String] { try database.tokenHashes() }

    /// The newest quote of each symbol that has one, in the order asked.
    public func latestQuotes(symbols: [String]) throws(StockwatchError) -> [QuoteJSON] {
        try database.latestQuotes(symbols: symbols)
    }

    public func quotes(symbol: String?, since: Date?, limit: Int) throws(StockwatchError) -> [QuoteJSON] {
        let symbol = try symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "symbol").text }
        return try database.quotes(symbol: symbol, since: since, limit: limit)
    }

    /// The daily table, newest day first; `since` counts whole days (its UTC day).
    public func dailyPrices(symbol: String?, since: Date?, limit: Int) throws(StockwatchError) -> [DailyPrice] {
        let symbol = try symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "symbol").text }
        let day = since.map { MarketDay(zone: .gmt).day(of: $0) }
        return try database.dailyPrices(symbol: symbol, since: day, limit: limit)
    }
}
