import Foundation
import StockwatchModel

/// fixer.io and currencylayer: one request covers every currency pair, answered from one
/// base currency by cross rates. Both put errors inside HTTP 200 bodies, so we branch on
/// `success`, not on the status.
struct ApilayerProvider: QuoteProvider {
    let config: ProviderConfig
    let key: String
    var name: ProviderName { config.name }
    var symbolsPerRequest: Int { 1_000 }

    func fetch(_ symbols: [Symbol], http: HTTPTransport) async throws(ProviderFailure) -> ProviderAnswer {
        let base = config.effectiveBaseCurrency
        let codes = Set(symbols.flatMap { $0.text.split(separator: "/").map(String.init) }).subtracting([base]).sorted()
        let url: String
        if name == .fixer {
            url = URLComponents.url(config.effectiveBaseURL, path: "/latest", query: [("access_key", key), ("base", base), ("symbols", codes.joined(separator: ","))])
        } else {
            url = URLComponents.url(config.effectiveBaseURL, path: "/live", query: [("access_key", key), ("source", base), ("currencies", codes.joined(separator: ","))])
        }
        let response = try await http.get(url, timeoutSeconds: config.timeoutSeconds, provider: name)
        let rates = try parse(response, base: base)
        var answer = ProviderAnswer()
        for symbol in symbols {
            let parts = symbol.text.split(separator: "/").map(String.init)
            // rates[X] is how many X one base unit buys; A/B is the price of one A in B.
            guard let from = rates.rates[parts[0]], let to = rates.rates[parts[1]], from > 0 else {
                answer.noData[symbol.text] = "\(name.rawValue) has no rate for \(parts.first { rates.rates[$0] == nil } ?? parts[0])"
                continue
            }
            answer.quotes.append(FetchedQuote(symbol: symbol.text, price: to / from, observedAt: rates.timestamp))
        }
        return answer
    }

    struct Rates {
        var timestamp: Date
        var rates: [String: Double]
    }

    private struct Envelope: Decodable {
        struct APIError: Decodable {
            var code: Int?
            var type: String?
            var info: String?
        }
        var success: Bool?
        var timestamp: Double?
        var base: String?  // fixer
        var source: String?  // currencylayer
        var rates: [String: Double]?
        var quotes: [String: Double]?
        var error: APIError?
        var message: String?
    }

    func parse(_ response: HTTPTransport.Response, base: String) throws(ProviderFailure) -> Rates {
        let prefix = name.rawValue
        if response.status == 429 {
            throw ProviderFailure(.rateLimited, "\(prefix): too many requests (HTTP 429)", retryAfter: HTTPTransport.retryAfter(response.headers))
        }
        if response.status >= 500 { throw ProviderFailure(.unavailable, "\(prefix): server error (HTTP \(response.status))") }
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: response.body) else {
            throw ProviderFailure(.unavailable, "\(prefix): malformed answer (HTTP \(response.status), not the expected JSON)")
        }
        if response.status == 401 || response.status == 403 {
            throw ProviderFailure(.config, "\(prefix): access key rejected (HTTP \(response.status)\(envelope.message.map { ": \($0)" } ?? ""))")
        }
        guard envelope.success == true else {
            guard let error = envelope.error else {
                throw ProviderFailure(.unavailable, "\(prefix): malformed answer (HTTP \(response.status), no success flag)")
            }
            guard let code = error.code else {
                throw ProviderFailure(.unavailable, "\(prefix): malformed answer (an error without a code)")
            }
            throw failure(for: code, type: error.type, info: error.info)
        }
        // Rates from another base would be stored as wrong prices: refuse them, so the
        // run fails over.
        if let answered = envelope.base ?? envelope.source, answered != base {
            throw ProviderFailure(.unavailable, "\(prefix): answered with base \(answered), not the \(base) asked for")
        }
        guard let timestamp = envelope.timestamp else { throw ProviderFailure(.unavailable, "\(prefix): malformed answer (no timestamp)") }
        var rates: [String: Double] = [base: 1]
        if let direct = envelope.rates {
            rates.merge(direct) { $1 }
        } else if let quotes = envelope.quotes {
            for (pair, value) in quotes where pair.hasPrefix(base) && pair.count == 6 { rates[String(pair.dropFirst(3))] = value }
        } else {
            throw ProviderFailure(.unavailable, "\(prefix): malformed answer (no rates)")
        }
        return Rates(timestamp: Date(timeIntervalSince1970: timestamp), rates: rates)
    }

    /// The documented error codes: https://fixer.io/documentation, shared by currencylayer.
    private func failure(for code: Int, type: String?, info: String?) -> ProviderFailure {
        let detail = [type, info].compactMap { $0 }.joined(separator: ": ")
        let prefix = "\(name.rawValue): error \(code)\(detail.isEmpty ? "" : " (\(detail))")"
        switch code {
        case 101: return ProviderFailure(.config, "\(prefix): the access key is missing or invalid; check api_key_file or api_key in [providers.\(name.rawValue)], or \(name.keyEnvironmentVariable)")
        case 102: return ProviderFailure(.config, "\(prefix): the account is inactive")
        case 105:
            let hint = type == "https_access_restricted" ? "; set base_url to the http:// address" : type == "base_currency_access_restricted" ? "; the free plan allows only the default base" : ""
            return ProviderFailure(.config, "\(prefix): the plan does not allow this\(hint)")
        case 104: return ProviderFailure(.quota, "\(prefix): monthly request allowance reached")
        case 201:
            let key = name == .fixer ? "base" : "source"
            return ProviderFailure(.config, "\(prefix): the \(key) currency \(config.effectiveBaseCurrency) is not valid; check \(key) in [providers.\(name.rawValue)]")
        case 202: return ProviderFailure(.badRequest, "\(prefix): invalid currency codes")
        case 106: return ProviderFailure(.unavailable, "\(prefix): no results")
        default: return ProviderFailure(.unavailable, prefix)
        }
    }
}
