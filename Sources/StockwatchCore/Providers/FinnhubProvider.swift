import Foundation
import StockwatchModel

/// Finnhub: one request per symbol, token in a header (never in the URL, which may be logged).
struct FinnhubProvider: QuoteProvider {
    let config: ProviderConfig
    let key: String
    var name: ProviderName { .finnhub }
    var symbolsPerRequest: Int { 1 }

    private struct Quote: Decodable {
        var c: Double?
        var t: Double?
        /// The previous trading day's close.
        var pc: Double?
    }

    func fetch(_ symbols: [Symbol], http: HTTPTransport) async throws(ProviderFailure) -> ProviderAnswer {
        var answer = ProviderAnswer()
        for (index, symbol) in symbols.enumerated() {
            do throws(ProviderFailure) {
                let url = URLComponents.url(config.effectiveBaseURL, path: "/quote", query: [("symbol", symbol.text)])
                let response = try await http.get(url, headers: [("X-Finnhub-Token", key)], timeoutSeconds: config.timeoutSeconds, provider: name)
                switch response.status {
                case 200:
                    guard let quote = try? JSONDecoder().decode(Quote.self, from: response.body), let price = quote.c, let time = quote.t else {
                        throw ProviderFailure(.unavailable, "finnhub: malformed answer for \(symbol.text)")
                    }
                    // An unknown symbol, and sometimes a passing glitch, answer all zeros: no data, never a price of 0.
                    if price == 0 && time == 0 {
                        answer.noData[symbol.text] = "finnhub has no data for \(symbol.text)"
                    } else {
                        answer.quotes.append(FetchedQuote(
                            symbol: symbol.text, price: price, observedAt: Date(timeIntervalSince1970: time), previousClose: quote.pc.flatMap { $0 > 0 ? $0 : nil }))
                    }
                case 401, 403:
                    throw ProviderFailure(.config, "finnhub: token rejected (HTTP \(response.status)); check api_key_file or api_key in [providers.finnhub], or \(ProviderName.finnhub.keyEnvironmentVariable)")
                case 429:
                    throw ProviderFailure(.rateLimited, "finnhub: too many requests (HTTP 429)", retryAfter: HTTPTransport.retryAfter(response.headers))
                default:
                    throw ProviderFailure(.unavailable, "finnhub: HTTP \(response.status) for \(symbol.text)")
                }
            } catch {
                // Stop asking for this run; what was answered so far still counts.
                if answer.quotes.isEmpty && answer.noData.isEmpty { throw error }
                answer.failure = error
                answer.unanswered = symbols[index...].map(\.text)
                return answer
            }
        }
        return answer
    }
}
