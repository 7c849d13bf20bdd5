import Foundation
import StockwatchModel

extension HTTPTransport {
    /// A provider's GET: a transport failure, or a redirect (never followed), is a
    /// `ProviderFailure` naming the provider, and the next provider is tried.
    func get(_ url: String, headers: [(String, String)] = [], timeoutSeconds: Int64, provider: ProviderName) async throws(ProviderFailure) -> Response {
        switch await get(url, headers: headers, timeoutSeconds: timeoutSeconds) {
        case let .failure(failure):
            throw ProviderFailure(.unavailable, "\(provider.rawValue): \(failure.message)")
        case let .success(answer):
            if (300..<400).contains(answer.status) {
                throw ProviderFailure(
                    .unavailable, "\(provider.rawValue): HTTP \(answer.status), a redirect\(Self.origin(of: answer.headers).map { " to \($0)" } ?? ""), which is never followed; check base_url")
            }
            return answer
        }
    }
}

extension URLComponents {
    /// Appends a path to a configured base URL and sets query items, percent-encoded.
    static func url(_ base: String, path: String, query: [(String, String)]) -> String {
        var components = URLComponents(string: base.hasSuffix("/") ? String(base.dropLast()) + path : base + path) ?? URLComponents()
        components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) }
        return components.string ?? base
    }
}
