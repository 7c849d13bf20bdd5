import Foundation

/// What an alert watches: a stock ticker (`AAPL`, `BRK.B`, `VOD.L`) or a currency pair (`EUR/USD`).
public struct Symbol: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case stock, currencyPair }

    /// Upper-case canonical form, as stored.
    public let text: String
    public let kind: Kind

    public var description: String { text }

    /// Case-insensitive; stored upper-case. `shapeOnly`: a pair need not be two different
    /// ISO 4217 codes (a lookup, which finds no quote for a pair that cannot have one).
    public static func parse(_ input: String, option: String = "SYMBOL", shapeOnly: Bool = false) throws(StockwatchError) -> Symbol {
        // ASCII before upper-casing: 'ß' would become the ticker 'SS', 'ﬀ' 'FF'.
        guard input.unicodeScalars.allSatisfy(\.isASCII) else {
            throw .invalidValue(option: option, value: input, reason: "not a ticker (letters, digits, '.' and '-', at most 12, e.g. AAPL, BRK.B, VOD.L) or currency pair (EUR/USD)")
        }
        let text = input.uppercased()
        if text.contains("/") {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ $0.count == 3 && $0.allSatisfy(\.isASCIILetter) }) else {
                throw .invalidValue(option: option, value: input, reason: "a currency pair is two ISO 4217 codes, e.g. EUR/USD")
            }
            if shapeOnly { return Symbol(text: text, kind: .currencyPair) }
            for code in parts where !isoCurrencyCodes.contains(String(code)) {
                throw .invalidValue(option: option, value: input, reason: "'\(code)' is not an ISO 4217 currency code")
            }
            guard parts[0] != parts[1] else { throw .invalidValue(option: option, value: input, reason: "a pair needs two different currencies") }
            return Symbol(text: text, kind: .currencyPair)
        }
        // ASCII only by now: plain byte ranges (CharacterSet's lookups were a twentieth of
        // an import of 100,000 alerts).
        let bytes = Array(text.utf8)
        func isLetterOrDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        guard (1...12).contains(bytes.count),
            bytes.allSatisfy({ isLetterOrDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }),
            let first = bytes.first, isLetterOrDigit(first),
            let last = bytes.last, last != UInt8(ascii: "."), last != UInt8(ascii: "-")
        else {
            throw .invalidValue(option: option, value: input, reason: "not a ticker (letters, digits, '.' and '-', at most 12, e.g. AAPL, BRK.B, VOD.L) or currency pair (EUR/USD)")
        }
        return Symbol(text: text, kind: .stock)
    }

    /// Active ISO 4217 codes, including the precious metals providers quote.
    public static let isoCurrencyCodes: Set<String> = [
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
        "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
        "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
        "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
        "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
        "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
        "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
        "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC",
        "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
        "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "YER", "ZAR",
        "ZMW", "ZWG", "ZWL",
    ]
}

extension Character {
    var isASCIILetter: Bool { isASCII && isLetter }
}
