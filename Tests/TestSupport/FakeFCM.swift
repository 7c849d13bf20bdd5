import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import _CryptoExtras

/// The FCM v1 `errorCode`s (in `details[]` of an error body), each answered with its documented HTTP status.
public enum FCMErrorCode: String, Sendable, CaseIterable {
    case INVALID_ARGUMENT, UNREGISTERED, SENDER_ID_MISMATCH, QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, THIRD_PARTY_AUTH_ERROR

    public var httpStatus: Int {
        switch self {
        case .INVALID_ARGUMENT: 400
        case .THIRD_PARTY_AUTH_ERROR: 401
        case .SENDER_ID_MISMATCH: 403
        case .UNREGISTERED: 404
        case .QUOTA_EXCEEDED: 429
        case .INTERNAL: 500
        case .UNAVAILABLE: 503
        }
    }

    /// The google.rpc status name in `error.status`.
    public var rpcStatus: String {
        switch self {
        case .INVALID_ARGUMENT: "INVALID_ARGUMENT"
        case .THIRD_PARTY_AUTH_ERROR: "UNAUTHENTICATED"
        case .SENDER_ID_MISMATCH: "PERMISSION_DENIED"
        case .UNREGISTERED: "NOT_FOUND"
        case .QUOTA_EXCEEDED: "RESOURCE_EXHAUSTED"
        case .INTERNAL: "INTERNAL"
        case .UNAVAILABLE: "UNAVAILABLE"
        }
    }

    var defaultMessage: String {
        switch self {
        case .INVALID_ARGUMENT: "The registration token is not a valid FCM registration token"
        case .THIRD_PARTY_AUTH_ERROR: "Auth error from APNS or Web Push Service"
        case .SENDER_ID_MISMATCH: "SenderId mismatch"
        case .UNREGISTERED: "Requested entity was not found."
        case .QUOTA_EXCEEDED: "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com'."
        case .INTERNAL: "Internal error encountered."
        case .UNAVAILABLE: "The service is currently unavailable."
        }
    }
}

/// What the fake answers to a valid, authorized send.
public enum FCMOutcome: Sendable {
    case success
    case error(FCMErrorCode, retryAfter: Int? = nil)
    /// The error with a Retry-After header of any text (e.g. "1e300"), as a hostile server may send.
    case errorWithRetryAfterText(FCMErrorCode, String)
    /// Never answer (the connection stays open until the client gives up or the fake stops).
    case hang
    /// 401 UNAUTHENTICATED without FcmError details, as for an expired access token.
    case unauthorized
}

/// A fake Google OAuth token endpoint (`POST /token`) plus the FCM HTTP v1 send endpoint
/// (`POST /v1/projects/{projectID}/messages:send`) on one HTTP/1.1 keep-alive server on 127.0.0.1.
public final class FakeFCM: @unchecked Sendable {
    public static let scope = "https://www.googleapis.com/auth/firebase.messaging"
    public static let requiredDataKeys = ["notification_id", "alert_id", "symbol", "price", "observed_at"]

    public struct ServiceAccount: Sendable {
        public let projectID: String
        public let clientEmail: String
        public let clientID: String
        public let privateKeyID: String
        /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
        public let privateKeyPEM: String
        public let privateKey: _RSA.Signing.PrivateKey
        public let publicKey: _RSA.Signing.PublicKey

        /// The Firebase service-account JSON, as the Firebase console downloads it.
        public func json(tokenURI: String) -> String {
            let encodedEmail = clientEmail.replacingOccurrences(of: "@", with: "%40")
            let fields: [(String, String)] = [
                ("type", "service_account"),
                ("project_id", projectID),
                ("private_key_id", privateKeyID),
                ("private_key", privateKeyPEM.hasSuffix("\n") ? privateKeyPEM : privateKeyPEM + "\n"),
                ("client_email", clientEmail),
                ("client_id", clientID),
                ("auth_uri", "https://accounts.google.com/o/oauth2/auth"),
                ("token_uri", tokenURI),
                ("auth_provider_x509_cert_url", "https://www.googleapis.com/oauth2/v1/certs"),
                ("client_x509_cert_url", "https://www.googleapis.com/robot/v1/metadata/x509/\(encodedEmail)"),
                ("universe_domain", "googleapis.com"),
            ]
            return "{\n" + fields.map { "  \(FakeJSON.string($0.0)): \(FakeJSON.string($0.1))" }.joined(separator: ",\n") + "\n}\n"
        }

        /// Writes `json(tokenURI:)` to `path` with mode 0600.
        public func write(to path: String, tokenURI: String) throws {
            try SecureFile.write(json(tokenURI: tokenURI), to: path)
        }

        /// A signed RS256 assertion as a correct client makes it (handy to test the fake itself,
        /// or to build deliberately wrong ones).
        public func makeAssertion(
            tokenURI: String, issuedAt: Int = Int(Date().timeIntervalSince1970), lifetime: Int = 3600,
            scope: String = FakeFCM.scope, issuer: String? = nil, keyID: String? = nil
        ) throws -> String {
            let header = #"{"alg":"RS256","typ":"JWT","kid":\#(FakeJSON.string(keyID ?? privateKeyID))}"#
            let claims = #"{"iss":\#(FakeJSON.string(issuer ?? clientEmail)),"scope":\#(FakeJSON.string(scope)),"aud":\#(FakeJSON.string(tokenURI)),"iat":\#(issuedAt),"exp":\#(issuedAt + lifetime)}"#
            let input = Base64URL.encode(Data(header.utf8)) + "." + Base64URL.encode(Data(claims.utf8))
            let signature = try privateKey.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5)
            return input + "." + Base64URL.encode(signature.rawRepresentation)
        }
    }

    public struct ReceivedMessage: Sendable {
        public var deviceToken: String
        public var title: String
        public var body: String
        public var data: [String: String]
        public var accessToken: String
        /// `android.ttl`, `android.collapse_key`, `android.notification.tag` and
        /// `.click_action`, the APNs headers, and `aps.thread-id`, `aps.category`, as sent.
        public var push = PushFields()
    }

    public struct PushFields: Sendable, Equatable {
        public var ttl: String?
        public var collapseKey: String?
        public var tag: String?
        public var clickAction: String?
        public var apnsExpiration: String?
        public var apnsCollapseID: String?
        public var threadID: String?
        public var category: String?
        /// `aps.badge`, which APNs requires to be a whole number.
        public var badge: Int?
    }

    public struct Stats: Sendable {
        public var messages = 0
        public var sendRequests = 0
        public var tokenRequests = 0
        /// Distinct (device token, notification_id) pairs among accepted messages.
        public var distinctNotifications = 0
        /// Accepted messages whose (device token, notification_id) pair had already been accepted.
        public var duplicateMessages = 0
        public var rejections = 0
    }

    /// Generates a fresh 2048-bit RSA service account.
    public static func makeServiceAccount(projectID: String = "demo-project") throws -> ServiceAccount {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let keyID = (0..<20).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let clientID = String(Int.random(in: 1...9)) + (0..<20).map { _ in String(Int.random(in: 0...9)) }.joined()
        return ServiceAccount(
            projectID: projectID,
            clientEmail: "stockwatch@\(projectID).iam.gserviceaccount.com",
            clientID: clientID,
            privateKeyID: keyID,
            privateKeyPEM: key.pkcs8PEMRepresentation,
            privateKey: key,
            publicKey: key.publicKey)
    }

    public let account: ServiceAccount
    public let tokenLifetime: Int
    private var server: RawHTTPServer!

    public var port: Int { server.port }
    public var baseURL: String { "http://127.0.0.1:\(server.port)" }
    public var tokenURI: String { baseURL + "/token" }
    public var sendPath: String { "/v1/projects/\(account.projectID)/messages:send" }
    public var sendURL: String { baseURL + sendPath }

    // All mutable state is behind `lock`, held only for a few dictionary/array operations.
    private let lock = NSLock()
    private var _behaviour: @Sendable (String, Int) -> FCMOutcome = { _, _ in .success }
    private var _customRoute: (@Sendable (_ method: String, _ path: String) -> (status: Int, body: String)?)?
    private var issued: [String: Double] = [:]  // access token -> expiry (Unix seconds)
    private var tokenCounter = 0
    private var messageCounter = 0
    private var stats = Stats()
    private var _rejections: [String] = []
    private var _messages: [ReceivedMessage] = []
    private var attempts: [String: Int] = [:]  // token \0 notification_id -> sends seen
    private var accepted: [String: Int] = [:]  // token \0 notification_id -> messages accepted

    /// Decides the answer to each valid, authorized send. `attempt` counts the sends of this
    /// (device token, notification_id) pair that reached this point, starting at 1. Default: success.
    public var behaviour: @Sendable (_ deviceToken: String, _ attempt: Int) -> FCMOutcome {
        get { lock.withLock { _behaviour } }
        set { lock.withLock { _behaviour = newValue } }
    }

    /// Answers requests that are neither /token nor a send (e.g. `GET /stats`); nil falls through to 404.
    public var customRoute: (@Sendable (_ method: String, _ path: String) -> (status: Int, body: String)?)? {
        get { lock.withLock { _customRoute } }
        set { lock.withLock { _customRoute = newValue } }
    }

    private var _expiresInText: String?
    /// When set, the token endpoint's `expires_in` is this JSON text (e.g. "1e300", "-5")
    /// instead of `tokenLifetime`; tokens still work for `tokenLifetime` seconds.
    public var expiresInText: String? {
        get { lock.withLock { _expiresInText } }
        set { lock.withLock { _expiresInText = newValue } }
    }

    private var _recordsMessages = true
    /// When false, accepted messages are only counted (not kept in `messages`): for long benchmarks.
    public var recordsMessages: Bool {
        get { lock.withLock { _recordsMessages } }
        set { lock.withLock { _recordsMessages = newValue } }
    }

    public var messages: [ReceivedMessage] { lock.withLock { _messages } }
    public var messageCount: Int { lock.withLock { stats.messages } }
    public var sendRequests: Int { lock.withLock { stats.sendRequests } }
    public var tokenRequests: Int { lock.withLock { stats.tokenRequests } }
    /// Why requests were refused, prefixed "token: ", "auth: " or "send: ".
    public var rejections: [String] { lock.withLock { _rejections } }
    public var currentStats: Stats { lock.withLock { stats } }
    /// Accepted messages per (device token, notification_id): more than 1 is a duplicate.
    public var acceptedCounts: [(deviceToken: String, notificationID: String, count: Int)] {
        lock.withLock {
            accepted.map { key, count in
                let parts = key.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "", count)
            }
        }
    }

    public init(account: ServiceAccount, tokenLifetime: Int = 3599) async throws {
        self.account = account
        self.tokenLifetime = tokenLifetime
        let box = WeakBox()
        server = try await RawHTTPServer { request in
            guard let fake = box.value else { return RawResponse(status: 503, headers: [], body: "") }
            return fake.handle(request)  // nil = hang
        }
        box.value = self
    }

    /// Every access token issued so far stops working (sends answer 401 UNAUTHENTICATED).
    public func revokeAllTokens() {
        lock.withLock { issued.removeAll() }
    }

    /// Waits until at least `count` messages were accepted; false on timeout.
    public func waitForMessages(count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await waitUntil(timeout: timeout) { messageCount >= count }
    }

    public func stop() async {
        await server.stop()
    }

    private final class WeakBox: @unchecked Sendable {
        weak var value: FakeFCM?
    }

    // MARK: - Routing (runs on the event loop)

    private func handle(_ request: RawRequest) -> RawResponse? {
        let path = request.path
        if path == "/token" {
            return token(request)
        }
        if path.hasPrefix("/v1/projects/") && path.hasSuffix("/messages:send") {
            return send(request, path: path)
        }
        if let route = customRoute, let answer = route("\(request.method)", String(path)) {
            return .json(answer.status, answer.body)
        }
        return .json(404, Self.errorBody(code: 404, message: "Not found: \(path)", status: "NOT_FOUND"))
    }

    private func reject(_ reason: String) {
        lock.withLock {
            _rejections.append(reason)
            stats.rejections += 1
        }
    }

    // MARK: - OAuth token endpoint

    private func token(_ request: RawRequest) -> RawResponse {
        lock.withLock { stats.tokenRequests += 1 }
        let now = currentUnixTime()
        if let reason = verifyTokenRequest(request, now: now) {
            reject("token: " + reason)
            let body = #"{"error":"invalid_grant","error_description":\#(FakeJSON.string("Invalid JWT: " + reason))}"#
            return .json(400, body)
        }
        let (token, expiresIn) = lock.withLock { () -> (String, String) in
            tokenCounter += 1
            let token = "ya29.fake-\(tokenCounter)"
            issued[token] = now + Double(tokenLifetime)
            return (token, _expiresInText ?? String(tokenLifetime))
        }
        return .json(200, #"{"access_token":"\#(token)","expires_in":\#(expiresIn),"token_type":"Bearer"}"#)
    }

    private func verifyTokenRequest(_ request: RawRequest, now: Double) -> String? {
        guard request.method == .POST else { return "method must be POST, got \(request.method)" }
        let contentType = request.headers.first(name: "content-type")?.lowercased() ?? ""
        guard contentType.hasPrefix("application/x-www-form-urlencoded") else {
            return "Content-Type must be application/x-www-form-urlencoded, got '\(contentType)'"
        }
        guard let text = String(data: request.bodyData, encoding: .utf8) else { return "body is not UTF-8" }
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = Self.formDecode(kv[0]), let value = Self.formDecode(kv.count > 1 ? kv[1] : "") else {
                return "malformed form encoding"
            }
            guard fields[key] == nil else { return "duplicate form field '\(key)'" }
            fields[key] = value
        }
        guard let grant = fields["grant_type"] else { return "missing grant_type" }
        guard grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" else { return "unsupported grant_type '\(grant)'" }
        guard let assertion = fields["assertion"], !assertion.isEmpty else { return "missing assertion" }
        return verifyJWT(assertion, now: now)
    }

    private static func formDecode(_ s: Substring) -> String? {
        s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    private func verifyJWT(_ jwt: String, now: Double) -> String? {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return "expected 3 dot-separated parts, got \(parts.count)" }
        guard let headerData = Base64URL.decode(parts[0]), let header = FakeJSON.object(headerData) else {
            return "header is not base64url-encoded (unpadded) JSON"
        }
        guard header["alg"] as? String == "RS256" else { return "alg must be RS256, got \(header["alg"] ?? "nothing")" }
        guard header["typ"] as? String == "JWT" else { return "typ must be JWT, got \(header["typ"] ?? "nothing")" }
        guard header["kid"] as? String == account.privateKeyID else {
            return "kid must be the private_key_id \(account.privateKeyID), got \(header["kid"] ?? "nothing")"
        }
        guard let signature = Base64URL.decode(parts[2]) else { return "signature is not base64url-encoded (unpadded)" }
        guard signature.count == 256 else { return "signature must be 256 bytes for a 2048-bit key, got \(signature.count)" }
        let signingInput = jwt.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count)
        guard account.publicKey.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: signature), for: Data(signingInput), padding: .insecurePKCS1v1_5)
        else { return "Invalid JWT Signature (expected RSASSA-PKCS1-v1_5 SHA-256 with the service account's key)." }
        guard let claimsData = Base64URL.decode(parts[1]), let claims = FakeJSON.object(claimsData),
            let claimsText = String(data: claimsData, encoding: .utf8)
        else { return "claims are not base64url-encoded (unpadded) JSON" }
        guard claims["iss"] as? String == account.clientEmail else {
            return "iss must be the client_email \(account.clientEmail), got \(claims["iss"] ?? "nothing")"
        }
        guard claims["scope"] as? String == Self.scope else { return "scope must be \(Self.scope), got \(claims["scope"] ?? "nothing")" }
        guard claims["aud"] as? String == tokenURI else { return "aud must be the token_uri \(tokenURI), got \(claims["aud"] ?? "nothing")" }
        guard claims["iat"] != nil else { return "missing iat" }
        guard claims["exp"] != nil else { return "missing exp" }
        guard let iat = Self.integerClaim("iat", in: claimsText) else { return "iat must be an integer number of seconds" }
        guard let exp = Self.integerClaim("exp", in: claimsText) else { return "exp must be an integer number of seconds" }
        let skew = iat - Int(now.rounded())
        guard abs(skew) <= 300 else {
            return "Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim (iat is \(skew) s from the server's clock; check the system clock)."
        }
        guard exp > iat, exp - iat <= 3600 else {
            return "Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim (exp - iat = \(exp - iat) s)."
        }
        return nil
    }

    /// The raw JSON literal of a top-level claim must be digits only (no fraction, exponent or quotes).
    static func integerClaim(_ name: String, in json: String) -> Int? {
        let key = "\"\(name)\""
        guard let keyRange = json.range(of: key) else { return nil }
        var i = keyRange.upperBound
        func skipSpace() { while i < json.endIndex, json[i].isWhitespace { i = json.index(after: i) } }
        skipSpace()
        guard i < json.endIndex, json[i] == ":" else { return nil }
        i = json.index(after: i)
        skipSpace()
        let start = i
        while i < json.endIndex, let ascii = json[i].asciiValue, ascii != UInt8(ascii: ","), ascii != UInt8(ascii: "}"),
            !json[i].isWhitespace
        {
            i = json.index(after: i)
        }
        let literal = json[start..<i]
        guard !literal.isEmpty, literal.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(literal)
    }

    // MARK: - Send endpoint

    private static let unauthenticatedBody = errorBody(
        code: 401,
        message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        status: "UNAUTHENTICATED")

    private static var unauthenticated: RawResponse {
        .json(401, unauthenticatedBody, headers: [("WWW-Authenticate", #"Bearer realm="https://accounts.google.com/", error="invalid_token""#)])
    }

    private static func errorResponse(_ code: FCMErrorCode, retryAfter: String?) -> RawResponse {
        var details = [fcmDetail(code)]
        if code == .INVALID_ARGUMENT {
            details.append(#"{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}"#)
        }
        let body = errorBody(code: code.httpStatus, message: code.defaultMessage, status: code.rpcStatus, details: details)
        return .json(code.httpStatus, body, headers: retryAfter.map { [("Retry-After", $0)] } ?? [])
    }

    private static func errorBody(code: Int, message: String, status: String, details: [String] = []) -> String {
        var body = #"{"error":{"code":\#(code),"message":\#(FakeJSON.string(message)),"status":"\#(status)""#
        if !details.isEmpty { body += #","details":[\#(details.joined(separator: ","))]"# }
        return body + "}}"
    }

    private static func fcmDetail(_ code: FCMErrorCode) -> String {
        #"{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"\#(code.rawValue)"}"#
    }

    private static func invalidArgument(_ message: String) -> RawResponse {
        .json(400, errorBody(code: 400, message: message, status: "INVALID_ARGUMENT", details: [fcmDetail(.INVALID_ARGUMENT)]))
    }

    private func send(_ request: RawRequest, path: Substring) -> RawResponse? {
        let auth = request.headers.first(name: "authorization")
        let now = currentUnixTime()
        let authProblem: String? = lock.withLock {
            stats.sendRequests += 1
            guard let auth else { return "missing Authorization header" }
            guard auth.hasPrefix("Bearer ") else { return "Authorization is not 'Bearer <token>'" }
            let token = String(auth.dropFirst(7))
            guard let expiry = issued[token] else { return "access token \(token) was not issued by this fake or was revoked" }
            guard now < expiry else { return "access token \(token) expired" }
            return nil
        }
        if let authProblem {
            reject("auth: " + authProblem)
            return Self.unauthenticated
        }
        guard request.method == .POST else {
            reject("send: method must be POST, got \(request.method)")
            return .json(405, Self.errorBody(code: 405, message: "Method not allowed.", status: "INVALID_ARGUMENT"))
        }
        guard path == sendPath else {
            reject("send: wrong project in path \(path), expected \(sendPath)")
            return .json(403, Self.errorBody(code: 403, message: "Permission denied on resource project.", status: "PERMISSION_DENIED"))
        }
        let parsed: Parsed
        switch parse(request) {
        case let .failure(problem):
            reject("send: " + problem.reason)
            return Self.invalidArgument(problem.reason)
        case let .success(p):
            parsed = p
        }
        if parsed.validateOnly {
            return .json(200, #"{"name":"projects/\#(account.projectID)/messages/fake_message_id"}"#)
        }
        let notificationID = parsed.data["notification_id"] ?? "digest:" + (parsed.data["notification_ids"] ?? "")
        let key = parsed.token + "\u{0}" + notificationID
        let (behaviour, attempt) = lock.withLock { () -> (@Sendable (String, Int) -> FCMOutcome, Int) in
            let attempt = (attempts[key] ?? 0) + 1
            attempts[key] = attempt
            return (_behaviour, attempt)
        }
        switch behaviour(parsed.token, attempt) {
        case .hang:
            return nil
        case .unauthorized:
            return Self.unauthenticated
        case let .error(code, retryAfter):
            return Self.errorResponse(code, retryAfter: retryAfter.map { String($0) })
        case let .errorWithRetryAfterText(code, text):
            return Self.errorResponse(code, retryAfter: text)
        case .success:
            let message = ReceivedMessage(
                deviceToken: parsed.token, title: parsed.title, body: parsed.body, data: parsed.data,
                accessToken: String(auth!.dropFirst(7)), push: parsed.push)
            let id = lock.withLock { () -> Int in
                messageCounter += 1
                if _recordsMessages { _messages.append(message) }
                stats.messages += 1
                let seen = accepted[key] ?? 0
                accepted[key] = seen + 1
                if seen == 0 { stats.distinctNotifications += 1 } else { stats.duplicateMessages += 1 }
                return messageCounter
            }
            return .json(200, #"{"name":"projects/\#(account.projectID)/messages/\#(id)"}"#)
        }
    }

    private struct Parsed {
        var token: String
        var title: String
        var body: String
        var data: [String: String]
        var validateOnly: Bool
        var push = PushFields()
    }

    private struct Problem: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    private static let topLevelKeys: Set<String> = ["message", "validate_only"]
    private static let messageKeys: Set<String> = [
        "name", "data", "notification", "android", "webpush", "apns", "fcm_options", "token", "topic", "condition",
    ]
    private static let notificationKeys: Set<String> = ["title", "body", "image"]

    private func parse(_ request: RawRequest) -> Result<Parsed, Problem> {
        let contentType = request.headers.first(name: "content-type")?.lowercased() ?? ""
        guard contentType.hasPrefix("application/json") else {
            return .failure(Problem("Content-Type must be application/json, got '\(contentType)'"))
        }
        guard let root = FakeJSON.object(request.bodyData) else {
            return .failure(Problem("Invalid JSON payload received. The body is not a JSON object."))
        }
        for key in root.keys where !Self.topLevelKeys.contains(key) {
            return .failure(Problem("Invalid JSON payload received. Unknown name \"\(key)\": Cannot find field."))
        }
        var validateOnly = false
        if let v = root["validate_only"] {
            guard let b = v as? Bool else { return .failure(Problem("validate_only must be a boolean")) }
            validateOnly = b
        }
        guard let message = root["message"] as? [String: Any] else {
            return .failure(Problem("Request contains an invalid argument: missing object 'message'."))
        }
        for key in message.keys where !Self.messageKeys.contains(key) {
            return .failure(Problem("Invalid JSON payload received. Unknown name \"\(key)\" at 'message': Cannot find field."))
        }
        let targets = ["token", "topic", "condition"].filter { message[$0] != nil }
        guard targets == ["token"] else {
            return .failure(Problem("message must have exactly one target and it must be 'token' (got \(targets))"))
        }
        guard let token = message["token"] as? String, !token.isEmpty else {
            return .failure(Problem("message.token must be a non-empty string"))
        }
        guard let notification = message["notification"] as? [String: Any] else {
            return .failure(Problem("message.notification must be an object"))
        }
        for key in notification.keys where !Self.notificationKeys.contains(key) {
            return .failure(Problem("Invalid JSON payload received. Unknown name \"\(key)\" at 'message.notification': Cannot find field."))
        }
        guard let title = notification["title"] as? String else { return .failure(Problem("message.notification.title must be a string")) }
        guard let body = notification["body"] as? String else { return .failure(Problem("message.notification.body must be a string")) }
        guard let rawData = message["data"] as? [String: Any] else { return .failure(Problem("message.data must be an object")) }
        var data: [String: String] = [:]
        var payloadBytes = title.utf8.count + body.utf8.count
        for (key, value) in rawData {
            guard let string = value as? String else {
                return .failure(Problem("Invalid value at 'message.data[\(key)].value': data values must be strings"))
            }
            let lower = key.lowercased()
            if lower == "from" || lower == "message_type" || lower.hasPrefix("google") || lower.hasPrefix("gcm") {
                return .failure(Problem("Invalid data payload key: \(key) is reserved"))
            }
            data[key] = string
            payloadBytes += key.utf8.count + string.utf8.count
        }
        // stockwatch's data contract: a notification's keys, or a digest's.
        for key in data["type"] == "digest" ? ["notification_ids", "count"] : Self.requiredDataKeys where data[key] == nil {
            return .failure(Problem("message.data is missing the key '\(key)'"))
        }
        guard let android = message["android"] as? [String: Any], android["priority"] as? String == "HIGH" else {
            return .failure(Problem("message.android.priority must be \"HIGH\""))
        }
        if let collapse = android["collapse_key"], !(collapse is String) {
            return .failure(Problem("message.android.collapse_key must be a string"))
        }
        var push = PushFields()
        push.collapseKey = android["collapse_key"] as? String
        if let ttl = android["ttl"] {
            // A duration in seconds with up to nine fractional digits and an "s", at most 28 days.
            guard let text = ttl as? String, text.hasSuffix("s"), let seconds = Double(text.dropLast()),
                  text.dropLast().allSatisfy({ $0.isNumber || $0 == "." }), (0...2_419_200).contains(seconds)
            else { return .failure(Problem("message.android.ttl must be a duration like \"3600s\" of 0 to 2419200 seconds")) }
            push.ttl = text
        }
        if let androidNotification = android["notification"] {
            guard let fields = androidNotification as? [String: Any] else { return .failure(Problem("message.android.notification must be an object")) }
            for (key, value) in fields {
                guard ["tag", "click_action", "title", "body", "icon", "color", "sound", "channel_id"].contains(key), value is String else {
                    return .failure(Problem("Invalid JSON payload received. Unknown name or wrong type \"\(key)\" at 'message.android.notification'"))
                }
            }
            push.tag = fields["tag"] as? String
            push.clickAction = fields["click_action"] as? String
        }
        guard let apns = message["apns"] as? [String: Any], let apnsHeaders = apns["headers"] as? [String: Any],
            apnsHeaders["apns-priority"] as? String == "10"
        else {
            return .failure(Problem("message.apns.headers[\"apns-priority\"] must be \"10\""))
        }
        for (key, value) in apnsHeaders where !(value is String) {
            return .failure(Problem("message.apns.headers[\"\(key)\"] must be a string"))
        }
        if let expiration = apnsHeaders["apns-expiration"] as? String {
            guard !expiration.isEmpty, expiration.allSatisfy(\.isNumber) else { return .failure(Problem("apns-expiration must be Unix seconds")) }
            push.apnsExpiration = expiration
        }
        if let collapse = apnsHeaders["apns-collapse-id"] as? String {
            guard collapse.utf8.count <= 64 else { return .failure(Problem("apns-collapse-id must be at most 64 bytes")) }
            push.apnsCollapseID = collapse
        }
        let aps = (apns["payload"] as? [String: Any])?["aps"] as? [String: Any] ?? [:]
        push.threadID = aps["thread-id"] as? String
        push.category = aps["category"] as? String
        if let badge = aps["badge"] {
            guard let number = badge as? Int, number >= 0 else { return .failure(Problem("aps.badge must be a whole number of 0 or more")) }
            push.badge = number
        }
        guard payloadBytes <= 4096 else {
            return .failure(Problem("Message is too big: notification and data payload is \(payloadBytes) bytes, the limit is 4096"))
        }
        return .success(Parsed(token: token, title: title, body: body, data: data, validateOnly: validateOnly, push: push))
    }
}

extension FakeFCM.ServiceAccount {
    /// A service account as `write(to:tokenURI:)` wrote it, with the token URI it names:
    /// for a client in another process than the fake (`stockwatch-fakes --post-floor`).
    public static func read(from path: String) throws -> (account: FakeFCM.ServiceAccount, tokenURI: String) {
        struct Unreadable: Error {}
        guard let fields = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: String],
              let projectID = fields["project_id"], let clientEmail = fields["client_email"], let clientID = fields["client_id"],
              let keyID = fields["private_key_id"], let pem = fields["private_key"], let tokenURI = fields["token_uri"]
        else { throw Unreadable() }
        let key = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        let account = FakeFCM.ServiceAccount(
            projectID: projectID, clientEmail: clientEmail, clientID: clientID, privateKeyID: keyID,
            privateKeyPEM: pem, privateKey: key, publicKey: key.publicKey)
        return (account, tokenURI)
    }
}
