import Foundation
import StockwatchModel

/// Quotes from a script's own feed: CSV `symbol,price,time` (a header line is allowed) or
/// NDJSON `{"symbol":..,"price":..,"time":..}`. `time` is ISO 8601 or Unix seconds.
/// All or nothing: the first bad line is reported with its number.
enum QuoteFile {
    private struct Line: Decodable {
        var symbol: String
        var price: Double
        var time: TimeValue
    }

    private enum TimeValue: Decodable {
        case seconds(Double)
        case text(String)
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let seconds = try? container.decode(Double.self) { self = .seconds(seconds) } else { self = .text(try container.decode(String.self)) }
        }
    }

    static func parse(_ data: Data, source: String, validator: QuoteValidator) throws(StockwatchError) -> [FetchedQuote] {
        guard let text = String(data: data, encoding: .utf8) else { throw .invalidInput(source: source, position: nil, reason: "not UTF-8 text") }
        var quotes: [FetchedQuote] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            let position = "line \(index + 1)"
            if line.isEmpty || line.hasPrefix("#") || (index == 0 && line.lowercased().hasPrefix("symbol,")) { continue }
            let fields: (String, Double?, String)
            if line.hasPrefix("{") {
                guard let decoded = try? JSONDecoder().decode(Line.self, from: Data(line.utf8)) else {
                    throw .invalidInput(source: source, position: position, reason: "expected {\"symbol\":..,\"price\":..,\"time\":..}")
                }
                switch decoded.time {
                case let .seconds(seconds): fields = (decoded.symbol, decoded.price, String(seconds))
                case let .text(text): fields = (decoded.symbol, decoded.price, text)
                }
            } else {
                let parts = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 3 else { throw .invalidInput(source: source, position: position, reason: "expected symbol,price,time") }
                guard let price = try? ValueParser.price(parts[1], option: "price") else {
                    throw .invalidInput(source: source, position: position, reason: "price '\(parts[1].truncatedForMessage)' is not a positive decimal")
                }
                fields = (parts[0], price, parts[2])
            }
            let symbol: Symbol
            do { symbol = try Symbol.parse(fields.0, option: "symbol") } catch { throw .invalidInput(source: source, position: position, reason: error.message) }
            guard let time = Double(fields.2).map({ Date(timeIntervalSince1970: $0) }) ?? ValueParser.date(fields.2) else {
                throw .invalidInput(source: source, position: position, reason: "time '\(fields.2.truncatedForMessage)' is neither ISO 8601 nor Unix seconds")
            }
            let quote = FetchedQuote(symbol: symbol.text, price: fields.1 ?? .nan, observedAt: time)
            if let refusal = validator.refusal(quote) { throw .invalidInput(source: source, position: position, reason: refusal) }
            quotes.append(quote)
        }
        return quotes
    }
}
