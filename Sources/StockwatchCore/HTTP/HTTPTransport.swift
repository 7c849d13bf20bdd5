import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import StockwatchModel

/// The one HTTP client of stockwatch, for providers (GET, through AsyncHTTPClient) and
/// channels (POST, on `KeptConnections`), one per run: a deadline on every exchange, a
/// cap on every answer, redirects never followed, and failures described without the
/// URL (its query may carry a key). Callers turn a `Failure` into their own outcome.
public final class HTTPTransport: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: Data
    }

    public struct Failure: Error, Sendable {
        public var message: String

        static func noAnswer(within seconds: Int64) -> Failure { Failure(message: "no answer within \(seconds) s") }
        static let closedByServer = Failure(message: "connection closed by the server")
        static let shutDown = Failure(message: "the HTTP client was shut down")
        static func overCap(_ bytes: Int) -> Failure { Failure(message: "answer larger than \(bytes) bytes") }
    }

    let client: HTTPClient
    let kept: KeptConnections

    /// `connectionsPerHost`: as many kept connections to one host as sends run at once.
    public init(connectTimeoutSeconds: Int64, connectionsPerHost: Int = 8) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(connectTimeoutSeconds))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(connectionsPerHost, 1))
        // A redirect would carry a provider's key, a bearer token or a signed body to
        // whatever host it names: a 3xx is an answer like any other, for the caller.
        configuration.redirectConfiguration = .disallow
        // HTTP/1.1 on kept connections, never HTTP/2: AsyncHTTPClient 1.37 traps when a
        // server resets an HTTP/2 stream after answering it (issue 922 of async-http-client;
        // nginx does so for every request whose body it did not read), so a provider
        // could stop fetch.
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        kept = KeptConnections(connectionsPerOrigin: connectionsPerHost, connectTimeoutSeconds: connectTimeoutSeconds)
    }

    public func shutdown() async {
        await kept.shutdown()
        try? await client.shutdown()
    }

    /// A GET whose whole exchange, body included, must end within `timeoutSeconds`: the
    /// client's own deadline ends when the headers arrive, so a server that then sends the
    /// body slowly, or never, is cut off by racing the exchange against the deadline.
    func get(_ url: String, headers: [(String, String)] = [], timeoutSeconds: Int64, maxBody: Int = 4 << 20) async -> Result<Response, Failure> {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: "stockwatch/\(version)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let deadline = NIODeadline.now() + .seconds(timeoutSeconds)
        let client = self.client
        let prepared = request
        do {
            let answer = try await withThrowingTaskGroup(of: Response?.self) { group in
                group.addTask {
                    let response = try await client.execute(prepared, deadline: deadline)
                    let body = try await response.body.collect(upTo: maxBody)
                    return Response(status: Int(response.status.code), headers: response.headers, body: Data(body.readableBytesView))
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeoutSeconds))
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            guard let answer else { return .failure(.noAnswer(within: timeoutSeconds)) }
            return .success(answer)
        } catch is NIOTooManyBytesError {
            return .failure(.overCap(maxBody))
        } catch {
            return .failure(Self.failure(error, timeoutSeconds: timeoutSeconds))
        }
    }

    /// A POST of `body` on a kept connection (`KeptConnections`); its deadline covers the
    /// whole exchange. `tls`: the trust of a channel with a `ca_file` (nil: the system's).
    func post(_ url: String, headers: [(String, String)], body: Data, timeoutSeconds: Int64, maxBody: Int = 1 << 20, tls: TLSConfiguration? = nil) async -> Result<Response, Failure> {
        await kept.post(url, headers: headers, body: body, timeoutSeconds: timeoutSeconds, maxBody: maxBody, tls: tls, tlsHint: Self.tlsHint)
    }

    /// A URL a sender posts to on every send, taken apart (and its trust made) once.
    func endpoint(_ url: String, tls: TLSConfiguration? = nil) -> Result<KeptConnections.Endpoint, Failure> {
        kept.endpoint(url, tls: tls)
    }

    /// `post` to an endpoint found once: no URL looked up, no trust compared, per send.
    func post(_ endpoint: KeptConnections.Endpoint, headers: [(String, String)], body: Data, timeoutSeconds: Int64, maxBody: Int = 1 << 20) async -> Result<Response, Failure> {
        await kept.post(endpoint, headers: headers, body: body, timeoutSeconds: timeoutSeconds, maxBody: maxBody, tlsHint: Self.tlsHint)
    }

    // Only channels post, and only channels have a ca_file.
    private static let tlsHint = "if the server's certificate is from a private CA, set the channel's ca_file"

    /// Transport errors in a few words, without the URL.
    static func failure(_ error: any Error, timeoutSeconds: Int64, tlsHint: String? = nil) -> Failure {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return .noAnswer(within: timeoutSeconds)
            case .connectTimeout: return Failure(message: "connection timed out")
            case .remoteConnectionClosed: return .closedByServer
            default: return Failure(message: "request failed (\(error))")
            }
        }
        if let error = error as? IOError { return Failure(message: "connection failed: \(error.description)") }
        if case ChannelError.connectTimeout = error { return Failure(message: "connection timed out") }
        // Its description names the host and port; the first attempt's error does not.
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return failure(first.error, timeoutSeconds: timeoutSeconds, tlsHint: tlsHint) }
            return Failure(message: "cannot resolve the host name")
        }
        // The handshake's reasons (an untrusted certificate, a wrong host name) carry no URL.
        if error is NIOSSLError || error is NIOSSLExtraError { return Failure(message: "TLS failed (\(error))" + (tlsHint.map { "; \($0)" } ?? "")) }
        // Other errors' descriptions may quote the URL: only their type.
        return Failure(message: "request failed (\(type(of: error)))")
    }

    /// The scheme and host a redirect names, without its path and query (which may carry a key).
    static func origin(of headers: HTTPHeaders) -> String? {
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
