import Foundation
import StockwatchModel
import StockwatchStore

/// What has happened: notifications (newest first, with their deliveries) and stored quotes.
public struct HistoryService: Sendable {
    let database: any OutboxStore & QuoteStore & AccountStore

    public init(database: any OutboxStore & QuoteStore & AccountStore) { self.database = database }

    /// Which notifications to list (the symbol as typed; it is made canonical here).
    public typealias Filter = NotificationQuery

    public func notifications(_ filter: Filter) throws(StockwatchError) -> [NotificationJSON] {
        var query = filter
        query.symbol = try filter.symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "symbol").text }
        return try database.notifications(query)
    }

    /// Notifications committed after `afterID`, oldest first, with their user's id: what
    /// `serve` streams.
    public func notifications(afterID: Int64, limit: Int) throws(StockwatchError) -> [(id: Int64, userID: Int64, notification: NotificationJSON)] {
        try database.notifications(afterID: afterID, limit: limit)
    }

    /// Every user's token hash, by user id: `serve` closes the streams of removed users.
    public func userTokens() throws(StockwatchError) -> [Int64: String] { try database.tokenHashes() }

    /// Quotes stored after `afterID`, oldest first: what `serve` streams.
    public func quotes(afterID: Int64, limit: Int) throws(StockwatchError) -> [(id: Int64, quote: QuoteJSON)] {
        try database.quotes(afterID: afterID, limit: limit)
    }

    /// The newest quote of each symbol that has one, in the order asked.
    public func latestQuotes(symbols: [String]) throws(StockwatchError) -> [QuoteJSON] {
        try database.latestQuotes(symbols: symbols)
    }

    /// The highest notification and quote ids: where a new stream starts.
    public func newestIDs() throws(StockwatchError) -> (notification: Int64, quote: Int64) {
        (try database.newestNotificationID(), try database.newestQuoteID())
    }

    public func quotes(symbol: String?, since: Date?, limit: Int) throws(StockwatchError) -> [QuoteJSON] {
        let symbol = try symbol.map { (s) throws(StockwatchError) in try Symbol.parse(s, option: "symbol").text }
        return try database.quotes(symbol: symbol, since: since, limit: limit)
    }
}
