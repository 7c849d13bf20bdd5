import Foundation
import NIOSSL
import StockwatchModel
import StockwatchStore

/// The OAuth access token of one service account, shared by all sends of a run and,
/// through the `access_tokens` table, by later runs: a per-minute tick authenticates about
/// once an hour, not every minute. A token is used until 5 minutes before it expires.
actor AccessTokenSource {
    let account: ServiceAccount
    let database: any AccessTokenStore
    let http: HTTPTransport
    let tls: TLSConfiguration?
    let timeoutSeconds: Int64

    static let refreshMargin: TimeInterval = 300

    private var current: String?
    private var inflight: Task<Result<String, HTTPTransport.Failure>, Never>?
    /// The last failed request and when it ended: answered to every send for
    /// `failureHoldSeconds`, so that a token endpoint that fails is asked once per run,
    /// not once per batch of sends (nor twice when the warm-up fails before the first
    /// send asks), and again by a long-running `notify --follow` a while later.
    private var failed: (failure: HTTPTransport.Failure, at: Date)?
    static let failureHoldSeconds: TimeInterval = 30

    init(account: ServiceAccount, database: any AccessTokenStore, http: HTTPTransport, tls: TLSConfiguration? = nil, timeoutSeconds: Int64) {
        self.account = account
        self.database = database
        self.http = http
        self.tls = tls
        self.timeoutSeconds = timeoutSeconds
    }

    /// A usable token. `rejected` is a token FCM just refused (401): it is never returned
    /// again, and a new one is requested unless another send or process already did.
    func token(rejecting rejected: String? = nil) async -> Result<String, HTTPTransport.Failure> {
        if let current, current != rejected { return .success(current) }
        if let cached = cachedToken(), cached != rejected {
            current = cached
            return .success(cached)
        }
        if let inflight { return await inflight.value }
        if let failed, Date().timeIntervalSince(failed.at) < Self.failureHoldSeconds { return .failure(failed.failure) }
        let task = Task { await self.exchange() }
        inflight = task
        let result = await task.value
        inflight = nil
        switch result {
        case let .success(token): (current, failed) = (token, nil)
        case let .failure(failure): failed = (failure, Date())
        }
        return result
    }

    private func cachedToken(now: Date = Date()) -> String? {
        guard let (token, expires) = (try? database.accessToken(account: account.cacheKey)) ?? nil else { return nil }
        return expires.timeIntervalSince(now) > Self.refreshMargin ? token : nil
    }

    /// Google documents 3600 s; the longest lifetime believed is a day.
    static let defaultLifetime: TimeInterval = 3600
    static let maximumLifetime: TimeInterval = 86_400

    /// `expires_in` comes from outside: an absent, non-positive or NaN one is taken as the
    /// documented hour, a huge one (1e300 trapped in milliseconds) as a day.
    static func lifetime(expiresIn: Double?) -> TimeInterval {
        guard let expiresIn, expiresIn > 0 else { return defaultLifetime }
        return min(expiresIn, maximumLifetime)
    }

    /// The JWT bearer grant: POST the signed assertion to token_uri.
    private func exchange(now: Date = Date()) async -> Result<String, HTTPTransport.Failure> {
        let assertion: String
        do { assertion = try account.assertion(now: now) } catch {
            return .failure(HTTPTransport.Failure(message: "cannot sign the service account JWT"))
        }
        let body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(assertion)"
        let response = await http.post(
            account.tokenURI, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Data(body.utf8),
            timeoutSeconds: timeoutSeconds, tls: tls)
        switch response {
        case let .failure(error):
            return .failure(HTTPTransport.Failure(message: "token request to \(account.tokenURI) failed: \(error.message)"))
        case let .success(answer) where (300..<400).contains(answer.status):
            return .failure(HTTPTransport.Failure(message: "the token request answered HTTP \(answer.status), a redirect, which is never followed; check token_uri in the service account file"))
        case let .success(answer):
            struct Grant: Decodable { var access_token: String?; var expires_in: Double?; var error: String?; var error_description: String? }
            let grant = try? JSONDecoder().decode(Grant.self, from: answer.body)
            guard answer.status == 200, let token = grant?.access_token, !token.isEmpty else {
                var message = "Google refused the service account's token request (HTTP \(answer.status)"
                if let code = grant?.error { message += ", \(code)" }
                if let detail = grant?.error_description { message += ": \(detail.truncatedForMessage)" }
                message += ")"
                if grant?.error == "invalid_grant" {
                    message += "; check that this machine's clock is right (it reads \(ISO8601DateFormatter().string(from: now))) and that the key in the service account file was not deleted"
                }
                return .failure(HTTPTransport.Failure(message: message))
            }
            let expiresAt = now.addingTimeInterval(Self.lifetime(expiresIn: grant?.expires_in))
            // A failed cache write only costs a token request next run.
            try? database.saveAccessToken(account: account.cacheKey, token: token, expiresAt: expiresAt)
            return .success(token)
        }
    }
}
