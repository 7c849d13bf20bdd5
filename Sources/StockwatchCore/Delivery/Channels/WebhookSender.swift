import Crypto
import Foundation
import NIOSSL
import StockwatchModel

/// A JSON POST signed as Standard Webhooks does, so receivers can use its libraries:
/// `webhook-id` (the notification id, to deduplicate on), `webhook-timestamp` and
/// `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
struct WebhookSender: ChannelSender {
    let channel: ChannelConfig
    /// The HMAC key's bytes (SymmetricKey is not Sendable).
    let keyBytes: Data
    let http: HTTPTransport
    /// The channel's url, with its `ca_file` if any, taken apart once (or why it cannot
    /// be posted to).
    let endpoint: Result<KeptConnections.Endpoint, HTTPTransport.Failure>

    init(channel: ChannelConfig, url: String, keyBytes: Data, http: HTTPTransport, tls: TLSConfiguration? = nil) {
        self.channel = channel
        self.keyBytes = keyBytes
        self.http = http
        endpoint = http.endpoint(url, tls: tls)
    }

    /// Reads the channel's `whsec_<base64>` secret; a malformed one is a config error
    /// (see `PreparedChannel`).
    static func urlAndKey(of channel: ChannelConfig, environment: [String: String]) throws(StockwatchError) -> (String, SymmetricKey) {
        guard let url = channel.url, let source = channel.secret else {
            throw .config(file: "config", line: nil, key: "channels.\(channel.name)", reason: "a webhook channel needs url and secret_file")
        }
        let secret = try SecretReader.read(source, environment: environment)
        guard let key = Self.key(fromSecret: secret) else {
            throw .config(
                file: source.masked, line: nil, key: "channels.\(channel.name).secret",
                reason: "must be written whsec_<base64 of 24 to 64 random bytes>, e.g. from: echo whsec_$(head -c 32 /dev/urandom | base64)")
        }
        return (url, key)
    }

    static func key(fromSecret secret: String) -> SymmetricKey? {
        guard secret.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(secret.dropFirst(6))), (24...64).contains(bytes.count) else {
            return nil
        }
        return SymmetricKey(data: bytes)
    }

    static func signature(id: String, timestamp: Int64, body: Data, key: SymmetricKey) -> String {
        var signed = Data("\(id).\(timestamp).".utf8)
        signed.append(body)
        return "v1," + Data(HMAC<SHA256>.authenticationCode(for: signed, using: key)).base64EncodedString()
    }

    func send(_ job: DeliveryJob) async -> SendResult {
        let body = job.notification.json
        let id = String(job.notification.id)
        let timestamp = Int64(Date().timeIntervalSince1970)
        let found: KeptConnections.Endpoint
        switch endpoint {
        case let .success(endpoint): found = endpoint
        case let .failure(error): return .retry("webhook: \(error.message)")
        }
        let response = await http.post(
            found,
            headers: [
                ("Content-Type", "application/json"),
                ("webhook-id", id),
                ("webhook-timestamp", String(timestamp)),
                ("webhook-signature", Self.signature(id: id, timestamp: timestamp, body: body, key: SymmetricKey(data: keyBytes))),
            ], body: body, timeoutSeconds: channel.effectiveTimeoutSeconds)
        switch response {
        case let .failure(error):
            return .retry("webhook: \(error.message)")
        case let .success(answer):
            switch answer.status {
            case 200..<300: return .sent
            case 410: return .failed("webhook: HTTP 410, the endpoint is gone; remove or fix channel '\(channel.name)'")
            // Never followed (the signed body would go wherever it points); retried, since an
            // admin can fix url before max_attempts.
            case 300..<400: return .retry("webhook: HTTP \(answer.status), a redirect, which is never followed; check url of channel '\(channel.name)'")
            default: return .retry("webhook: HTTP \(answer.status)", after: HTTPTransport.retryAfter(answer.headers))
            }
        }
    }
}
