import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// What the fake webhook receiver answers.
public enum WebhookOutcome: Sendable {
    case status(Int, retryAfter: Int? = nil)
    /// The status with a Retry-After header of any text (e.g. "1e300"), as a hostile receiver may send.
    case statusWithRetryAfterText(Int, String)
    /// Never answer (the connection stays open until the client gives up or the receiver stops).
    case hang
    /// The status, after this many milliseconds (a slow receiver).
    case delayed(Int, milliseconds: Int64)
}

/// An HTTP endpoint on 127.0.0.1 that records every POST and checks its Standard Webhooks signature.
public final class FakeWebhookReceiver: @unchecked Sendable {
    public struct Received: Sendable {
        public var path: String
        /// Header names lowercased (a repeated header keeps its last value).
        public var headers: [String: String]
        public var body: Data
        public var webhookID: String
        /// How many POSTs with this webhook-id were received so far, this one included.
        public var attempt: Int
        public var signatureValid: Bool
        /// Why the signature was not valid (nil when it was).
        public var signatureProblem: String?
        public var bodyString: String { String(decoding: body, as: UTF8.self) }
    }

    public struct InvalidSecret: Error, CustomStringConvertible {
        public var description: String { "a webhook secret must be whsec_ followed by base64 of 24 to 64 bytes" }
    }

    /// `whsec_` + base64 of 32 random bytes.
    public static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "whsec_" + Data(bytes).base64EncodedString()
    }

    /// Writes `contents` (e.g. a secret, no newline added) to `path` with mode 0600.
    public static func writePrivateFile(_ contents: String, to path: String) throws {
        try SecureFile.write(contents, to: path)
    }

    public let secret: String
    private let key: SymmetricKey
    private var server: RawHTTPServer!

    private let lock = NSLock()
    private var _received: [Received] = []
    private var attempts: [String: Int] = [:]
    private var accepted: [String: Int] = [:]  // webhook-id -> validly signed POSTs answered 2xx
    private var _behaviour: @Sendable (String, Int) -> WebhookOutcome = { _, _ in .status(200) }

    public var port: Int { server.port }
    public var baseURL: String { "\(scheme)://127.0.0.1:\(server.port)" }
    private let scheme: String
    /// `baseURL + "/hook"` (any path is accepted).
    public var url: String { baseURL + "/hook" }

    public var received: [Received] { lock.withLock { _received } }
    public var requestCount: Int { lock.withLock { _received.count } }
    /// Validly signed POSTs answered 2xx, per webhook-id: more than 1 is a duplicate.
    public var acceptedCounts: [String: Int] { lock.withLock { accepted } }
    public var badSignatureCount: Int { lock.withLock { _received.reduce(0) { $0 + ($1.signatureValid ? 0 : 1) } } }

    /// Decides the answer to each POST; `attempt` counts POSTs with this webhook-id, from 1. Default: 200.
    public var behaviour: @Sendable (_ webhookID: String, _ attempt: Int) -> WebhookOutcome {
        get { lock.withLock { _behaviour } }
        set { lock.withLock { _behaviour = newValue } }
    }

    /// `tls`: an HTTPS receiver presenting `TestCertificate` (trusted only through a
    /// channel's `ca_file`).
    public init(secret: String, tls: Bool = false) async throws {
        guard secret.hasPrefix("whsec_"), let raw = Data(base64Encoded: String(secret.dropFirst(6))),
            (24...64).contains(raw.count)
        else { throw InvalidSecret() }
        self.secret = secret
        self.key = SymmetricKey(data: raw)
        scheme = tls ? "https" : "http"
        let box = WeakBox()
        server = try await RawHTTPServer(tls: tls ? try TestCertificate.serverContext() : nil) { request in
            guard let fake = box.value else { return RawResponse(status: 503, headers: [], body: "") }
            return fake.handle(request)  // nil = hang
        }
        box.value = self
    }

    /// Waits until at least `count` POSTs were received; false on timeout.
    public func waitForRequests(count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await waitUntil(timeout: timeout) { requestCount >= count }
    }

    public func stop() async {
        await server.stop()
    }

    private final class WeakBox: @unchecked Sendable {
        weak var value: FakeWebhookReceiver?
    }

    private func handle(_ request: RawRequest) -> RawResponse? {
        guard request.method == .POST else {
            return RawResponse(status: 405, headers: [("Allow", "POST")], body: "")
        }
        var headers: [String: String] = [:]
        for (name, value) in request.headers { headers[name.lowercased()] = value }
        let body = request.bodyData
        let id = headers["webhook-id"] ?? ""
        let problem = verify(id: headers["webhook-id"], timestamp: headers["webhook-timestamp"], signature: headers["webhook-signature"], body: body)
        let (behaviour, attempt) = lock.withLock { () -> (@Sendable (String, Int) -> WebhookOutcome, Int) in
            let attempt = (attempts[id] ?? 0) + 1
            attempts[id] = attempt
            _received.append(Received(
                path: String(request.path), headers: headers, body: body, webhookID: id, attempt: attempt,
                signatureValid: problem == nil, signatureProblem: problem))
            return (_behaviour, attempt)
        }
        switch behaviour(id, attempt) {
        case .hang:
            return nil
        case let .status(status, retryAfter):
            if problem == nil && (200..<300).contains(status) { lock.withLock { accepted[id, default: 0] += 1 } }
            return RawResponse(status: status, headers: retryAfter.map { [("Retry-After", String($0))] } ?? [], body: "")
        case let .delayed(status, milliseconds):
            if problem == nil && (200..<300).contains(status) { lock.withLock { accepted[id, default: 0] += 1 } }
            return RawResponse(status: status, headers: [], body: "", delay: .milliseconds(milliseconds))
        case let .statusWithRetryAfterText(status, text):
            if problem == nil && (200..<300).contains(status) { lock.withLock { accepted[id, default: 0] += 1 } }
            return RawResponse(status: status, headers: [("Retry-After", text)], body: "")
        }
    }

    /// nil when the Standard Webhooks signature checks out.
    private func verify(id: String?, timestamp: String?, signature: String?, body: Data) -> String? {
        guard let id, !id.isEmpty else { return "missing webhook-id" }
        guard let timestamp else { return "missing webhook-timestamp" }
        guard !timestamp.isEmpty, timestamp.allSatisfy({ $0.isASCII && $0.isNumber }), let seconds = Int(timestamp) else {
            return "webhook-timestamp is not integer Unix seconds: \(timestamp)"
        }
        let skew = seconds - Int(currentUnixTime().rounded())
        guard abs(skew) <= 300 else { return "webhook-timestamp is \(skew) s from now (more than 5 minutes)" }
        guard let signature, !signature.isEmpty else { return "missing webhook-signature" }
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(body)
        var sawV1 = false
        for entry in signature.split(separator: " ", omittingEmptySubsequences: true) {
            guard entry.hasPrefix("v1,") else { continue }
            sawV1 = true
            guard let mac = Data(base64Encoded: String(entry.dropFirst(3))) else { continue }
            if HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: content, using: key) { return nil }
        }
        return sawV1 ? "no v1 signature matches HMAC-SHA256 of id.timestamp.body" : "webhook-signature has no v1,<base64> entry"
    }
}
