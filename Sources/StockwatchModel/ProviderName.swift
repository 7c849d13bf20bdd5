import Foundation

/// The price providers stockwatch knows; their clients are in StockwatchCore/Providers.
public enum ProviderName: String, Sendable, CaseIterable {
    case fixer, currencylayer, finnhub, stooq

    /// Stooq needs no key; the others cannot work without one.
    public var needsKey: Bool { self != .stooq }
    public var servesCurrencies: Bool { self == .fixer || self == .currencylayer }

    public var defaultBaseURL: String {
        switch self {
        case .fixer: "https://data.fixer.io/api"
        case .currencylayer: "https://api.currencylayer.com"
        case .finnhub: "https://finnhub.io/api/v1"
        case .stooq: "https://stooq.com"
        }
    }
    public var keyEnvironmentVariable: String { "STOCKWATCH_\(rawValue.uppercased())_API_KEY" }
}
