import Foundation
import NIOSSL
import StockwatchModel
import StockwatchStore

/// Firebase Cloud Messaging HTTP v1: one message per device, authenticated with the
/// service account's OAuth token. Errors are read from `error.details[].errorCode`.
struct FCMSender: ChannelSender {
    let channel: ChannelConfig
    let account: ServiceAccount
    let tokens: AccessTokenSource
    let http: HTTPTransport
    /// The messages' URL, with the channel's `ca_file` if any, taken apart once (or why it
    /// cannot be posted to).
    let sendEndpoint: Result<KeptConnections.Endpoint, HTTPTransport.Failure>

    init(channel: ChannelConfig, account: ServiceAccount, database: any AccessTokenStore, http: HTTPTransport, tls: TLSConfiguration? = nil) {
        self.channel = channel
        self.account = account
        self.http = http
        let base = channel.apiBaseURL ?? ChannelConfig.defaultFCMBaseURL
        let sendURL = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/projects/\(account.projectID)/messages:send"
        sendEndpoint = http.endpoint(sendURL, tls: tls)
        tokens = AccessTokenSource(account: account, database: database, http: http, tls: tls, timeoutSeconds: channel.effectiveTimeoutSeconds)
    }

    /// The access token, fetched while notify claims its first batch rather than after:
    /// the first sends wait on this same request (`AccessTokenSource` shares it). Not the
    /// connections: a run with one delivery would open `concurrency` of them.
    func warmUp() {
        let tokens = self.tokens
        Task { _ = await tokens.token() }
    }

    func send(_ job: DeliveryJob) async -> SendResult {
        guard let device = job.device else { return .failed("the device of this delivery was removed") }
        guard device.active else { return .failed("device \(device.id) was deactivated before this send") }
        let body = job.companions.isEmpty
            ? Self.message(for: job.notification, token: device.fcmToken, channel: channel, now: Date(), badge: job.badge)
            : Self.digest(of: [job.notification] + job.companions.map(\.notification), token: device.fcmToken, channel: channel, now: Date(), badge: job.badge)
        var token: String
        switch await tokens.token() {
        case let .success(value): token = value
        case let .failure(error): return .retry(error.message)
        }
        var result = await post(body, token: token, device: device)
        // An expired or revoked access token: get a new one and try once more.
        if result.refreshToken {
            switch await tokens.token(rejecting: token) {
            case let .success(value): token = value
            case let .failure(error): return .retry(error.message)
            }
            result = await post(body, token: token, device: device)
            if result.refreshToken { return .retry("FCM refused a fresh access token (HTTP 401); check that the service account may send messages (role Firebase Cloud Messaging API Admin)") }
        }
        return result.outcome
    }

    private func post(_ body: Data, token: String, device: DeliveryJob.Device) async -> (outcome: SendResult, refreshToken: Bool) {
        let response: Result<HTTPTransport.Response, HTTPTransport.Failure>
        switch sendEndpoint {
        case let .success(endpoint):
            response = await http.post(
                endpoint, headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: body,
                timeoutSeconds: channel.effectiveTimeoutSeconds)
        case let .failure(error): response = .failure(error)
        }
        switch response {
        case let .failure(error): return (.retry("FCM: \(error.message)"), false)
        case let .success(answer):
            if (200..<300).contains(answer.status) { return (.sent, false) }
            // Never followed (it would carry the bearer token); retried, since an admin can
            // fix api_base_url before max_attempts.
            if (300..<400).contains(answer.status) {
                return (.retry("FCM: HTTP \(answer.status), a redirect, which is never followed; check api_base_url of channel '\(channel.name)'"), false)
            }
            let error = FCMError(answer.body)
            if answer.status == 401, error.code != "THIRD_PARTY_AUTH_ERROR" { return (.retry("FCM: HTTP 401"), true) }
            return (Self.outcome(status: answer.status, error: error, retryAfter: HTTPTransport.retryAfter(answer.headers), device: device, project: account.projectID), false)
        }
    }

    /// The documented FCM v1 error codes, and what each means for this delivery.
    static func outcome(status: Int, error: FCMError, retryAfter: TimeInterval?, device: DeliveryJob.Device, project: String) -> SendResult {
        let detail = "FCM \(error.code ?? error.status ?? "HTTP \(status)")" + (error.message.map { ": \($0.truncatedForMessage)" } ?? "")
        switch error.code {
        case "UNREGISTERED":
            return .failed("\(detail); device \(device.id) is no longer registered (app removed or inactive) and was deactivated", deactivateDevice: true)
        case "INVALID_ARGUMENT" where error.isAboutToken:
            return .failed("\(detail); device \(device.id) has an invalid token and was deactivated", deactivateDevice: true)
        case "INVALID_ARGUMENT":
            return .failed("\(detail); the message was refused (a bug: please report it)")
        case "SENDER_ID_MISMATCH":
            return .failed("\(detail); device \(device.id)'s token belongs to another Firebase project than '\(project)': the app and the channel's service account must use the same project")
        case "THIRD_PARTY_AUTH_ERROR":
            return .failed("\(detail); Apple (APNs) or web push refused Firebase's credentials: upload a valid APNs key or certificate in the Firebase console (Project settings, Cloud Messaging)")
        case "QUOTA_EXCEEDED":
            // Google asks for at least a minute before the first retry after a 429.
            return .retry(detail, after: max(retryAfter ?? 0, 60))
        case "UNAVAILABLE", "INTERNAL":
            return .retry(detail, after: retryAfter)
        default:
            if status == 429 { return .retry(detail, after: max(retryAfter ?? 0, 60)) }
            if status >= 500 || status == 408 { return .retry(detail, after: retryAfter) }
            return .failed(detail)
        }
    }

    /// The v1 message: notification for the system tray, data (strings only) for the app,
    /// high priority on Android and APNs so that a price alert is not deferred. Written
    /// by hand into one buffer: at thousands of sends a second, JSONEncoder was an eighth
    /// of notify's CPU, and at 20,000 the same message built from strings a tenth.
    ///
    /// It expires after the channel's `ttl` (Android `ttl`, APNs `apns-expiration`), so a
    /// phone that was offline does not get old prices; it collapses per alert (a phone
    /// that was offline sees an alert's latest firing, not all of them) and groups per
    /// symbol in the tray (Android `tag`, APNs `thread-id`).
    static func message(for notification: NotificationPayload, token: String, channel: ChannelConfig, now: Date, badge: Int? = nil) -> Data {
        var json = JSONText(capacity: 700 + notification.message.utf8.count + token.utf8.count)
        let ttl = channel.effectiveTTLSeconds
        // APNs: 0 means deliver now or never; otherwise an absolute time.
        let expiration = ttl == 0 ? 0 : Int64(now.timeIntervalSince1970) + ttl
        json.raw(#"{"message":{"token":"#)
        json.string(token)
        json.raw(#","notification":{"title":"#)
        json.string(notification.symbol + " alert")
        json.raw(#","body":"#)
        json.string(notification.message)
        json.raw(#"},"data":{"notification_id":""#)
        json.integer(notification.id)
        json.raw(#"","alert_id":""#)
        if let alert = notification.alertId { json.integer(alert) }
        json.raw(#"","symbol":"#)
        json.string(notification.symbol)
        json.raw(#","price":"#)
        json.string(notification.price.formattedNumber)
        json.raw(#","observed_at":"#)
        json.date(notification.observedAt)
        json.raw(#"},"android":{"priority":"HIGH","ttl":""#)
        json.integer(ttl)
        json.raw(#"s""#)
        if let alert = notification.alertId {
            json.raw(#","collapse_key":"alert-"#)
            json.integer(alert)
            json.raw(#"""#)
        }
        json.raw(#","notification":{"tag":"#)
        json.string(notification.symbol)
        if let action = channel.clickAction {
            json.raw(#","click_action":"#)
            json.string(action)
        }
        json.raw(#"}},"apns":{"headers":{"apns-priority":"10","apns-expiration":""#)
        json.integer(expiration)
        json.raw(#"""#)
        if let alert = notification.alertId {
            json.raw(#","apns-collapse-id":"alert-"#)
            json.integer(alert)
            json.raw(#"""#)
        }
        json.raw(#"},"payload":{"aps":{"sound":"default","thread-id":"#)
        json.string(notification.symbol)
        if let action = channel.clickAction {
            json.raw(#","category":"#)
            json.string(action)
        }
        if let badge {
            json.raw(#","badge":"#)
            json.integer(Int64(badge))
        }
        json.raw("}}}}}")
        return Data(json.bytes)
    }
}

extension FCMSender {
    /// One push for the notifications quiet hours held for a device: "3 alerts during
    /// your quiet hours" and their messages. Only a push, not a notification of its own:
    /// its data is `type: digest` with the ids it stands for, so the app and the stream
    /// keep one id per notification.
    static func digest(of notifications: [NotificationPayload], token: String, channel: ChannelConfig, now: Date, badge: Int? = nil) -> Data {
        let q = JSONText.quoted
        var body = notifications.map(\.message).joined(separator: "; ")
        if body.count > 400 { body = String(body.prefix(399)) + "…" }
        let ids = notifications.map { String($0.id) }.joined(separator: ",")
        let ttl = channel.effectiveTTLSeconds
        let expiration = ttl == 0 ? 0 : Int64(now.timeIntervalSince1970) + ttl
        var android = #""priority":"HIGH","ttl":"\#(ttl)s","notification":{"tag":"digest""#
        if let action = channel.clickAction { android += #","click_action":"# + q(action) }
        android += "}"
        var aps = #""sound":"default","thread-id":"digest""#
        if let action = channel.clickAction { aps += #","category":"# + q(action) }
        if let badge { aps += #","badge":\#(badge)"# }
        let text = #"{"message":{"token":"# + q(token)
            + #","notification":{"title":"# + q("\(notifications.count) alerts during your quiet hours") + #","body":"# + q(body)
            + #"},"data":{"type":"digest","notification_ids":"# + q(ids) + #","count":"# + q(String(notifications.count))
            + #"},"android":{"# + android + #"},"apns":{"headers":{"apns-priority":"10","apns-expiration":"\#(expiration)"},"payload":{"aps":{"# + aps + "}}}}}"
        return Data(text.utf8)
    }
}

/// `{"error":{"code","message","status","details":[{"@type":...,"errorCode":...}]}}`.
struct FCMError: Sendable {
    var code: String?
    var status: String?
    var message: String?
    var isAboutToken = false

    init(_ body: Data) {
        guard let root = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let error = root["error"] as? [String: Any] else { return }
        status = error["status"] as? String
        message = error["message"] as? String
        for detail in error["details"] as? [[String: Any]] ?? [] {
            if let code = detail["errorCode"] as? String { self.code = code }
            for violation in detail["fieldViolations"] as? [[String: Any]] ?? [] where (violation["field"] as? String) == "message.token" {
                isAboutToken = true
            }
        }
        if let message, message.localizedCaseInsensitiveContains("registration token") { isAboutToken = true }
        if code == nil, status == "INVALID_ARGUMENT" || status == "UNAUTHENTICATED" { code = status }
    }
}
