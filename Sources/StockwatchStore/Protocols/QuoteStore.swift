import Foundation
import StockwatchModel

/// What one fetch run writes, in one transaction.
public struct FetchWrite: Sendable {
    /// The budgets of the providers this run claimed and asked, after it.
    public var providerStates: [ProviderStateRecord]
    /// Validated quotes; one already stored (same symbol and time) is skipped.
    public var quotes: [QuoteJSON]
    /// Symbols some provider served: their no-data back-off ends.
    public var served: Set<String>
    /// Symbols every asked provider said it has no data for, with the reason.
    public var noData: [String: String]
    /// How long a symbol waits after its `n`th no-data answer in a row (n from 1).
    public var noDataBackoffSeconds: @Sendable (_ answers: Int) -> Int64
    /// Quotes older than this are pruned (see `QuoteStore.recordFetch`).
    public var retentionSeconds: Int64
    /// The previous closes the providers reported beside their quotes.
    public var previousCloses: [PreviousClose] = []
    /// Daily rows are kept this many days, or the longest new high or low window plus two
    /// weeks if longer; pruned when a run derives a day's row (about once a day).
    public var dailyRetentionDays = 400
    public var now: Date
    public init(
        providerStates: [ProviderStateRecord], quotes: [QuoteJSON], served: Set<String>, noData: [String: String],
        noDataBackoffSeconds: @escaping @Sendable (Int) -> Int64, retentionSeconds: Int64, now: Date
    ) {
        self.noDataBackoffSeconds = noDataBackoffSeconds
        self.providerStates = providerStates
        self.quotes = quotes
        self.served = served
        self.noData = noData
        self.retentionSeconds = retentionSeconds
        self.now = now
    }
}

/// Prices, the symbols to fetch, and their no-data back-offs.
public protocol QuoteStore: Sendable {
    /// Stores a fetch run: budgets, back-offs (a served symbol's ends), new quotes, the
    /// providers' previous closes, and for each symbol with new quotes the daily row of
    /// its last earlier market day, derived from its quotes when no row is stored; then
    /// prunes quotes past the retention except each symbol's newest and what active
    /// rise/fall windows need.
    /// Returns the quotes that were new.
    func recordFetch(_ run: FetchWrite) throws(StockwatchError) -> [QuoteJSON]
    /// Stores quotes from a file, all in one transaction; returns those that were new.
    func addQuotes(_ quotes: [QuoteJSON], fetchedAt: Date) throws(StockwatchError) -> [QuoteJSON]
    /// Symbols of active alerts and of `watchList`, in turns across users (each user's
    /// stalest symbol, then each one's next, the watch list taking turns like a user),
    /// stalest first within a turn.
    func watchedSymbols(watchList: [String]) throws(StockwatchError) -> [String]
    /// Symbols waiting out a no-data back-off, with the time of their next try.
    func symbolsBackingOff(now: Date) throws(StockwatchError) -> [String: Date]
    /// Newest first, by observed time.
    func quotes(symbol: String?, since: Date?, limit: Int) throws(StockwatchError) -> [QuoteJSON]
    /// The newest quote of each symbol that has one, in the order asked.
    func latestQuotes(symbols: [String]) throws(StockwatchError) -> [QuoteJSON]
}

/// The providers' request budgets and back-offs, kept because each run is a new process.
public protocol ProviderBudgetStore: Sendable {
    func providerStates() throws(StockwatchError) -> [ProviderStateRecord]
    /// Claims `provider` for one fetch until released, or nil while another fetch holds
    /// it: two fetches at the same moment, on any machines, never ask one provider at
    /// once, so no budget is spent twice. The claim is a lock that dies with its process
    /// (`runLock`: a file lock on SQLite, a session advisory lock on PostgreSQL), so a
    /// killed fetch never keeps a provider from the next one.
    func claimProvider(_ provider: String) throws(StockwatchError) -> (any RunLease)?
}

/// OAuth access tokens of the FCM service accounts, shared by the runs that send.
public protocol AccessTokenStore: Sendable {
    func accessToken(account: String) throws(StockwatchError) -> (token: String, expiresAt: Date)?
    func saveAccessToken(account: String, token: String, expiresAt: Date) throws(StockwatchError)
    /// Every cached token's expiry, by account.
    func accessTokenExpiries() throws(StockwatchError) -> [String: Date]
}
