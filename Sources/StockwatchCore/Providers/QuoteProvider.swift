import Foundation
import StockwatchModel

/// A price as a provider reported it, before validation.
public struct FetchedQuote: Sendable, Equatable {
    public var symbol: String
    public var price: Double
    public var observedAt: Date
    /// The previous trading day's close, when the provider reports one (Finnhub's `pc`).
    public var previousClose: Double?

    public init(symbol: String, price: Double, observedAt: Date, previousClose: Double? = nil) {
        self.symbol = symbol
        self.price = price
        self.observedAt = observedAt
        self.previousClose = previousClose
    }
}

/// What one provider call produced: prices, symbols it had no data for, and, when it
/// stopped part-way (Finnhub's 429 after some symbols), the failure and what it left.
public struct ProviderAnswer: Sendable {
    public var quotes: [FetchedQuote] = []
    /// Symbol -> why there is no price (unknown symbol, N/D, all-zero answer).
    public var noData: [String: String] = [:]
    public var failure: ProviderFailure?
    /// Symbols not asked because of `failure`.
    public var unanswered: [String] = []
    /// Symbols of `noData` that the answer merely left out (a truncated batch): they fail
    /// over like no data, but say nothing about the symbol, so they do not back off.
    public var omitted: Set<String> = []

    public init() {}
}

/// A failure of the provider as a whole: the next provider in the route is tried.
public struct ProviderFailure: Error, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Bad or inactive key, plan does not allow it: an admin must act (exit 78).
        case config
        /// Monthly allowance used up (fixer/currencylayer 104).
        case quota
        /// Too many requests (HTTP 429).
        case rateLimited = "rate_limited"
        /// Network, timeout, 5xx, malformed body: try again later.
        case unavailable
        /// The request itself was wrong (bad currency codes).
        case badRequest = "bad_request"
    }

    public var kind: Kind
    public var message: String
    public var retryAfter: TimeInterval?

    public init(_ kind: Kind, _ message: String, retryAfter: TimeInterval? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfter = retryAfter
    }
}

/// One price source. Implementations only speak their service's format; routing, budgets
/// and validation live in `FetchService`.
public protocol QuoteProvider: Sendable {
    var name: ProviderName { get }
    /// How many symbols one request covers (fixer: all; Finnhub: one).
    var symbolsPerRequest: Int { get }
    /// Throws when nothing was answered; returns a partial answer with `failure` otherwise.
    func fetch(_ symbols: [Symbol], http: HTTPTransport) async throws(ProviderFailure) -> ProviderAnswer
}

enum ProviderFactory {
    static func make(_ config: ProviderConfig, key: String?) -> any QuoteProvider {
        switch config.name {
        case .fixer, .currencylayer: ApilayerProvider(config: config, key: key ?? "")
        case .finnhub: FinnhubProvider(config: config, key: key ?? "")
        case .stooq: StooqProvider(config: config)
        }
    }
}
