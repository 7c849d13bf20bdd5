import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StockwatchModel

/// A configured channel, ready to send. Senders never throw: every failure becomes a
/// `SendResult` that says whether to retry, so one bad delivery cannot stop a run.
protocol ChannelSender: Sendable {
    func send(_ job: DeliveryJob) async -> SendResult
}

/// The HTTP side shared by the fcm and webhook channels: one AsyncHTTPClient per run,
/// with as many pooled connections per host as sends run at once.
final class DeliveryHTTP: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
    }

    let client: HTTPClient
    static let maximumBody = 1 << 20

    init(concurrency: Int) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(concurrency, 1))
        // A redirect would carry the bearer token or the signed body to whatever host it
        // names: a 3xx is an answer like any other, which the senders retry.
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async {
        try? await client.shutdown()
    }

    /// POSTs `body`; a transport failure or timeout is a description without the URL
    /// (it may carry a secret in its query).
    func post(_ url: String, headers: [(String, String)], body: Data, timeoutSeconds: Int64) async -> Result<Response, DeliveryTransportError> {
        // The EventLoopFuture API: it collects the (small) answer in one buffer and costs
        // less CPU per request than the async one, which matters at thousands a second.
        let request: HTTPClient.Request
        do {
            var headerFields = HTTPHeaders(headers)
            headerFields.add(name: "User-Agent", value: "stockwatch/\(version)")
            request = try HTTPClient.Request(url: url, method: .POST, headers: headerFields, body: .bytes(body))
        } catch {
            return .failure(DeliveryTransportError(message: "not a valid URL"))
        }
        do {
            // The accumulator aborts a larger answer instead of buffering all of it.
            let accumulator = ResponseAccumulator(request: request, maxBodySize: Self.maximumBody)
            let response = try await client.execute(request: request, delegate: accumulator, deadline: .now() + .seconds(timeoutSeconds)).futureResult.get()
            let bytes = response.body.map { Data($0.readableBytesView) } ?? Data()
            return .success(Response(status: Int(response.status.code), headers: response.headers, body: bytes))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return .failure(DeliveryTransportError(message: "no answer within \(timeoutSeconds) s"))
        } catch let error as HTTPClientError where error == .connectTimeout {
            return .failure(DeliveryTransportError(message: "connection timed out"))
        } catch is ResponseAccumulator.ResponseTooBigError {
            return .failure(DeliveryTransportError(message: "answer larger than \(Self.maximumBody) bytes"))
        } catch {
            return .failure(DeliveryTransportError(message: Self.describe(error)))
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError, error == .remoteConnectionClosed { return "connection closed by the server" }
        if let error = error as? IOError { return "connection failed: \(error.description)" }
        let text = String(describing: error)
        return text.count < 200 ? "request failed: \(text)" : "request failed (\(type(of: error)))"
    }

    /// Seconds from a Retry-After header (delta seconds or an HTTP date), clamped to [0, 1 day].
    static func retryAfter(_ headers: HTTPHeaders, now: Date = Date()) -> TimeInterval? {
        HTTPFetcher.retryAfter(headers, now: now)
    }
}

struct DeliveryTransportError: Error, Sendable {
    var message: String
}
