import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StockwatchModel

/// A thin AsyncHTTPClient wrapper: one client per run, per-request deadlines, a body cap,
/// and every transport failure turned into a `ProviderFailure` naming the provider.
public final class HTTPFetcher: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: Data
    }

    let client: HTTPClient
    static let maximumBody = 4 << 20

    public init(connectTimeoutSeconds: Int64) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(connectTimeoutSeconds))
        // A redirect would carry X-Finnhub-Token to whatever host it names: never follow one.
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    public func get(_ url: String, headers: [(String, String)] = [], timeoutSeconds: Int64, provider: ProviderName) async throws(ProviderFailure) -> Response {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: "stockwatch/\(version)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let deadline = NIODeadline.now() + .seconds(timeoutSeconds)
        let client = self.client
        let prepared = request
        do {
            // The client's deadline ends when the headers arrive; a server that then sends
            // the body slowly, or never, is cut off by racing the whole exchange against it.
            let answer = try await withThrowingTaskGroup(of: Response?.self) { group in
                group.addTask {
                    let response = try await client.execute(prepared, deadline: deadline)
                    let body = try await response.body.collect(upTo: Self.maximumBody)
                    return Response(status: Int(response.status.code), headers: response.headers, body: Data(body.readableBytesView))
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeoutSeconds))
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            guard let answer else { throw HTTPClientError.deadlineExceeded }
            if (300..<400).contains(answer.status) {
                throw ProviderFailure(
                    .unavailable, "\(provider.rawValue): HTTP \(answer.status), a redirect\(Self.origin(of: answer.headers).map { " to \($0)" } ?? ""), which is never followed; check base_url")
            }
            return answer
        } catch let error as ProviderFailure {
            throw error
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw ProviderFailure(.unavailable, "\(provider.rawValue): no answer within \(timeoutSeconds) s")
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw ProviderFailure(.unavailable, "\(provider.rawValue): answer larger than \(Self.maximumBody) bytes")
        } catch {
            throw ProviderFailure(.unavailable, "\(provider.rawValue): \(Self.describe(error))")
        }
    }

    /// Transport errors without the URL: it may carry an access key.
    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "connection closed by the server"
            default: return "request failed (\(error))"
            }
        }
        return "request failed (\(type(of: error)))"
    }

    /// The scheme and host a redirect names, without its path and query (which may carry a key).
    private static func origin(of headers: HTTPHeaders) -> String? {
        guard let location = headers.first(name: "Location"), let url = URLComponents(string: location), let host = url.host, !host.isEmpty else { return nil }
        return "\(url.scheme ?? "http")://\(host)\(url.port.map { ":\($0)" } ?? "")"
    }

    /// The longest wait a Retry-After may impose: a day.
    static let maximumRetryAfter: TimeInterval = 86_400

    /// Seconds from a Retry-After header (delta seconds or an HTTP date), within
    /// [0, maximumRetryAfter]: the header comes from outside, and 1e300 or a date in the
    /// year 9999 must neither trap when stored in milliseconds nor block for ages.
    /// Anything else (NaN, text) is no Retry-After.
    static func retryAfter(_ headers: HTTPHeaders, now: Date = Date()) -> TimeInterval? {
        retryAfter(text: headers.first(name: "Retry-After"), now: now)
    }

    static func retryAfter(text: String?, now: Date = Date()) -> TimeInterval? {
        guard let value = text?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = TimeInterval(value) { return clampRetryAfter(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).flatMap { clampRetryAfter($0.timeIntervalSince(now)) }
    }

    static func clampRetryAfter(_ seconds: TimeInterval) -> TimeInterval? {
        seconds.isNaN ? nil : min(max(seconds, 0), maximumRetryAfter)
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
