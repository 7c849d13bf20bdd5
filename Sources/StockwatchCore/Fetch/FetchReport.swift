import Foundation
import StockwatchModel

/// What a fetch did, for `--json`, `-v` and the exit code.
public struct FetchReport: Encodable, Sendable {
    public struct Skipped: Encodable, Sendable, Equatable {
        public var symbol: String
        /// nil when no provider was asked (a symbol backing off after "no data").
        public var provider: String?
        public var reason: String

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(symbol, forKey: .symbol)
            try c.encode(provider, forKey: .provider)
            try c.encode(reason, forKey: .reason)
        }
        enum CodingKeys: String, CodingKey { case symbol, provider, reason }
    }

    public struct Failure: Encodable, Sendable, Equatable {
        public var provider: String?
        public var symbol: String?
        public var code: String
        public var message: String

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(provider, forKey: .provider)
            try c.encode(symbol, forKey: .symbol)
            try c.encode(code, forKey: .code)
            try c.encode(message, forKey: .message)
        }
        enum CodingKeys: String, CodingKey { case provider, symbol, code, message }
    }

    /// Quotes newly stored by this run.
    public var quotes: [QuoteJSON] = []
    public var skipped: [Skipped] = []
    public var errors: [Failure] = []
    /// Symbols that got neither a fresh quote nor a budget skip.
    var failedSymbols: Set<String> = []
    /// Symbols that got a valid quote (stored now or already stored).
    var servedSymbols: Set<String> = []
    /// Symbols some provider could not say anything about (it failed, left them out, or
    /// was skipped): "no data" from the others does not make them back off.
    var inconclusive: Set<String> = []

    enum CodingKeys: String, CodingKey { case quotes, skipped, errors }
}
