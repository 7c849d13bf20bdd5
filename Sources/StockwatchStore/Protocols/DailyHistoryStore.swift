import Foundation
import StockwatchModel

/// How much daily history a symbol has.
public struct DailyCoverage: Sendable, Equatable {
    public var oldest: String
    public var newest: String
    public var days: Int
    /// Some row came from a download or a file, not only from the quotes.
    public var downloaded: Bool
    public init(oldest: String, newest: String, days: Int, downloaded: Bool = true) {
        self.oldest = oldest
        self.newest = newest
        self.days = days
        self.downloaded = downloaded
    }
}

/// The daily closes that since-close rules and new highs and lows are judged against.
public protocol DailyHistoryStore: Sendable {
    /// Stores rows in one transaction with the budgets of the providers asked for them, one
    /// row per symbol and day. A row already there is replaced, except that a row derived
    /// from quotes never replaces a downloaded one. Then drops rows older than `keepFrom`
    /// (a day), the retention. Returns how many rows were new or changed, per symbol.
    func saveDailyPrices(_ rows: [DailyPrice], providerStates: [ProviderStateRecord], keepFrom: String) throws(StockwatchError) -> [String: Int]
    /// Newest first; `symbol` nil for every symbol.
    func dailyPrices(symbol: String?, since day: String?, limit: Int) throws(StockwatchError) -> [DailyPrice]
    /// The history each of these symbols has; a symbol without any is absent.
    func dailyCoverage(symbols: [String]) throws(StockwatchError) -> [String: DailyCoverage]
    /// Symbols of active alerts whose rule needs daily history (since close, new high or
    /// low), with the longest window any of them needs (0 for since close only).
    func symbolsNeedingHistory() throws(StockwatchError) -> [String: Int64]
}
