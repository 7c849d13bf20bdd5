import Foundation
import StockwatchModel

/// Stooq's CSV quote endpoint: no key, many symbols per request, `N/D` for unknown ones.
/// Symbols in Stooq's forms (`stooqSymbol`).
struct StooqProvider: QuoteProvider {
    let config: ProviderConfig
    var name: ProviderName { .stooq }
    var symbolsPerRequest: Int { 20 }

    /// Stooq stamps quotes in Warsaw time.
    static let timeZone = TimeZone(identifier: "Europe/Warsaw")!

    /// Stooq's name of a symbol: New York tickers take `.us` with a class share's dot as a
    /// dash (`BRK.B` → `brk-b.us`), London `.uk` (`VOD.L` → `vod.uk`), Warsaw none
    /// (`PKO.WA` → `pko`), Frankfurt, Tokyo and Hong Kong their own suffix; a currency
    /// pair is written without its slash (`EUR/USD` → `eurusd`).
    static func stooqSymbol(_ text: String) -> String {
        guard let symbol = try? Symbol.parse(text, shapeOnly: true) else { return text.lowercased() }
        let (ticker, exchange) = symbol.listing
        let base = ticker.replacingOccurrences(of: ".", with: "-").replacingOccurrences(of: "/", with: "").lowercased()
        let suffix = switch exchange {
        case nil, .warsaw?: ""
        case .newYork?: ".us"
        case .london?: ".uk"
        case .frankfurt?: ".de"
        case .tokyo?: ".jp"
        case .hongKong?: ".hk"
        }
        return base + suffix
    }

    /// The daily history CSV of one symbol (`/q/d/l/?s=SYMBOL&i=d`), as text.
    func daily(_ symbol: String, http: HTTPTransport) async throws(ProviderFailure) -> String {
        try await text("/q/d/l/?s=" + Self.urlSymbol(symbol) + "&i=d", http: http)
    }

    /// A symbol in Stooq's form, escaped for a query.
    static func urlSymbol(_ text: String) -> String {
        stooqSymbol(text).addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: ".-"))) ?? ""
    }

    /// One GET of Stooq's: 429 is rate limited, any other status but 200 unavailable.
    func text(_ pathAndQuery: String, http: HTTPTransport) async throws(ProviderFailure) -> String {
        let base = config.effectiveBaseURL.hasSuffix("/") ? String(config.effectiveBaseURL.dropLast()) : config.effectiveBaseURL
        let response = try await http.get(base + pathAndQuery, timeoutSeconds: config.timeoutSeconds, provider: name)
        if response.status == 429 {
            throw ProviderFailure(.rateLimited, "stooq: too many requests (HTTP 429)", retryAfter: HTTPTransport.retryAfter(response.headers))
        }
        guard response.status == 200 else { throw ProviderFailure(.unavailable, "stooq: HTTP \(response.status)") }
        guard let text = String(data: response.body, encoding: .utf8) else { throw ProviderFailure(.unavailable, "stooq: malformed answer (not text)") }
        return text
    }

    func fetch(_ symbols: [Symbol], http: HTTPTransport) async throws(ProviderFailure) -> ProviderAnswer {
        let text = try await text("/q/l/?s=" + symbols.map { Self.urlSymbol($0.text) }.joined(separator: "+") + "&f=sd2t2ohlcv&h&e=csv", http: http)
        var lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }
        guard let header = lines.first, header.count >= 7, header[0] == "Symbol", header[6] == "Close" else {
            throw ProviderFailure(.unavailable, "stooq: malformed answer (no CSV header)")
        }
        lines.removeFirst()
        let wanted = Dictionary(symbols.map { (Self.stooqSymbol($0.text).uppercased(), $0.text) }) { first, _ in first }
        var answer = ProviderAnswer()
        let parser = DateFormatter()
        parser.locale = Locale(identifier: "en_US_POSIX")
        parser.timeZone = Self.timeZone
        parser.dateFormat = "yyyy-MM-dd HH:mm:ss"
        for row in lines where row.count >= 7 {
            guard let symbol = wanted[row[0].uppercased()] else { continue }
            guard row[1] != "N/D", let price = Double(row[6]), let date = parser.date(from: row[1] + " " + row[2]) else {
                answer.noData[symbol] = "stooq has no data for \(symbol)"
                continue
            }
            answer.quotes.append(FetchedQuote(symbol: symbol, price: price, observedAt: date))
        }
        for symbol in symbols where !answer.quotes.contains(where: { $0.symbol == symbol.text }) && answer.noData[symbol.text] == nil {
            answer.noData[symbol.text] = "stooq did not answer for \(symbol.text)"
            answer.omitted.insert(symbol.text)
        }
        return answer
    }
}
