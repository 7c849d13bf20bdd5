import Foundation

/// Where a ticker trades, from its suffix: `.US` (or none) New York, `.UK` and `.L`
/// London, `.PL` and `.WA` Warsaw, `.DE` Frankfurt, `.JP` Tokyo, `.HK` Hong Kong. A suffix
/// that names no exchange is part of the ticker (`BRK.B`, a class share in New York).
public enum Exchange: String, Sendable, CaseIterable {
    case newYork, london, warsaw, frankfurt, tokyo, hongKong

    static let suffixes: [String: Exchange] = [
        "US": .newYork, "UK": .london, "L": .london, "PL": .warsaw, "WA": .warsaw, "DE": .frankfurt, "JP": .tokyo, "HK": .hongKong,
    ]

    /// The market's own clock: a trading day (and its close) is a day there.
    public var timeZone: TimeZone {
        let name = switch self {
        case .newYork: "America/New_York"
        case .london: "Europe/London"
        case .warsaw: "Europe/Warsaw"
        case .frankfurt: "Europe/Berlin"
        case .tokyo: "Asia/Tokyo"
        case .hongKong: "Asia/Hong_Kong"
        }
        return TimeZone(identifier: name)!
    }
}

extension Symbol {
    /// The ticker without its exchange suffix, and the exchange (nil for a currency pair).
    public var listing: (ticker: String, exchange: Exchange?) {
        guard kind == .stock else { return (text, nil) }
        if let dot = text.lastIndex(of: "."), let exchange = Exchange.suffixes[String(text[text.index(after: dot)...])] {
            return (String(text[..<dot]), exchange)
        }
        return (text, .newYork)
    }

    /// The clock a day of this symbol is counted on: its exchange's, UTC for a currency pair.
    public var marketTimeZone: TimeZone { listing.exchange?.timeZone ?? .gmt }
}
