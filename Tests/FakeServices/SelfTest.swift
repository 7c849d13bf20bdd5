// `stockwatch-fakes --self-test`: exercises FakeFCM and FakeWebhookReceiver in-process over real HTTP.
// Exits 0 when every check passes, 1 otherwise.

import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import TestSupport

struct SelfTest {
    var failures = 0

    mutating func check(_ ok: Bool, _ what: String) {
        print((ok ? "ok   " : "FAIL ") + what)
        if !ok { failures += 1 }
    }

    /// AsyncHTTPClient, not URLSession: FoundationNetworking needs libcurl, which a
    /// `--static-swift-stdlib` build cannot link without its static library.
    static func post(_ url: String, headers: [String: String], body: String, timeout: TimeInterval = 5) async -> (Int, String, [String: String]) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let data = try await response.body.collect(upTo: 1 << 20)
            var h: [String: String] = [:]
            for field in response.headers { h[field.name.lowercased()] = field.value }
            return (Int(response.status.code), String(buffer: data), h)
        } catch {
            return (-1, "\(error)", [:])
        }
    }

    static func token(_ fcm: FakeFCM, assertion: String) async -> (Int, String) {
        let body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + assertion
        let (status, text, _) = await post(fcm.tokenURI, headers: ["Content-Type": "application/x-www-form-urlencoded"], body: body)
        return (status, text)
    }

    static func message(token: String, notificationID: String = "n1", extraData: String = "") -> String {
        #"{"message":{"token":"\#(token)","notification":{"title":"T","body":"B"},"data":{"notification_id":"\#(notificationID)","alert_id":"7","symbol":"AAPL","price":"201.5","observed_at":"2025-01-01T00:00:00Z"\#(extraData)},"android":{"priority":"HIGH"},"apns":{"headers":{"apns-priority":"10"}}}}"#
    }

    static func send(_ fcm: FakeFCM, accessToken: String, body: String, timeout: TimeInterval = 5) async -> (Int, String, [String: String]) {
        await post(fcm.sendURL, headers: ["Authorization": "Bearer \(accessToken)", "Content-Type": "application/json"], body: body, timeout: timeout)
    }

    mutating func run() async throws {
        let account = try FakeFCM.makeServiceAccount(projectID: "p1")
        let fcm = try await FakeFCM(account: account, tokenLifetime: 120)
        check(account.json(tokenURI: fcm.tokenURI).contains(#""private_key": "-----BEGIN PRIVATE KEY-----\n"#), "service account JSON has escaped PKCS#8 PEM")

        let good = try account.makeAssertion(tokenURI: fcm.tokenURI)
        let (s1, t1) = await Self.token(fcm, assertion: good)
        check(s1 == 200 && t1 == #"{"access_token":"ya29.fake-1","expires_in":120,"token_type":"Bearer"}"#, "token issued: \(t1)")
        var tampered = Array(good)
        tampered[tampered.count - 5] = tampered[tampered.count - 5] == "A" ? "B" : "A"
        let (s2, t2) = await Self.token(fcm, assertion: String(tampered))
        check(s2 == 400 && t2.contains("invalid_grant"), "tampered signature rejected: \(t2)")
        let (s3, _) = await Self.token(fcm, assertion: try account.makeAssertion(tokenURI: fcm.tokenURI, keyID: "other"))
        check(s3 == 400, "wrong kid rejected")
        let (s4, t4) = await Self.token(fcm, assertion: try account.makeAssertion(tokenURI: fcm.tokenURI, issuedAt: Int(Date().timeIntervalSince1970) - 600))
        check(s4 == 400 && t4.contains("clock"), "skewed iat rejected: \(t4)")
        let (s5, _) = await Self.token(fcm, assertion: try account.makeAssertion(tokenURI: "https://oauth2.googleapis.com/token"))
        check(s5 == 400, "wrong aud rejected")
        let other = try FakeFCM.makeServiceAccount(projectID: "p1")
        let (s6, _) = await Self.token(fcm, assertion: try other.makeAssertion(tokenURI: fcm.tokenURI, issuer: account.clientEmail, keyID: account.privateKeyID))
        check(s6 == 400, "signature by another key rejected")
        check(fcm.tokenRequests == 6 && fcm.rejections.count == 5, "token counters \(fcm.tokenRequests) \(fcm.rejections)")

        let at = "ya29.fake-1"
        let (m1, b1, _) = await Self.send(fcm, accessToken: at, body: Self.message(token: "dev-a"))
        check(m1 == 200 && b1 == #"{"name":"projects/p1/messages/1"}"#, "send accepted: \(b1)")
        let (m2, b2, _) = await Self.send(fcm, accessToken: "ya29.nope", body: Self.message(token: "dev-a"))
        check(m2 == 401 && b2.contains("UNAUTHENTICATED") && !b2.contains("FcmError"), "unknown access token 401")
        let (m3, b3, _) = await Self.send(fcm, accessToken: at, body: Self.message(token: "dev-a", extraData: #","from":"x""#))
        check(m3 == 400 && b3.contains("reserved"), "reserved data key rejected: \(b3)")
        let (m4, b4, _) = await Self.send(fcm, accessToken: at, body: Self.message(token: "dev-a", extraData: #","n":1"#))
        check(m4 == 400 && b4.contains("strings"), "non-string data value rejected: \(b4)")

        fcm.behaviour = { device, attempt in
            switch device {
            case "gone": return .error(.UNREGISTERED)
            case "bad": return .error(.INVALID_ARGUMENT)
            case "busy": return attempt < 3 ? .error(.QUOTA_EXCEEDED, retryAfter: 60) : .success
            case "slow": return .hang
            case "apns": return .error(.THIRD_PARTY_AUTH_ERROR)
            default: return .success
            }
        }
        let (g, gb, _) = await Self.send(fcm, accessToken: at, body: Self.message(token: "gone"))
        check(g == 404 && gb.contains(#""errorCode":"UNREGISTERED""#) && gb.contains("NOT_FOUND"), "UNREGISTERED: \(gb)")
        let (bd, bdb, _) = await Self.send(fcm, accessToken: at, body: Self.message(token: "bad"))
        check(bd == 400 && bdb.contains("google.rpc.BadRequest") && bdb.contains("not a valid FCM registration token"), "INVALID_ARGUMENT token: \(bdb)")
        let (ap, apb, _) = await Self.send(fcm, accessToken: at, body: Self.message(token: "apns"))
        check(ap == 401 && apb.contains("THIRD_PARTY_AUTH_ERROR"), "THIRD_PARTY_AUTH_ERROR 401")
        for attempt in 1...3 {
            let (q, _, qh) = await Self.send(fcm, accessToken: at, body: Self.message(token: "busy", notificationID: "n9"))
            if attempt < 3 {
                check(q == 429 && qh["retry-after"] == "60", "QUOTA_EXCEEDED attempt \(attempt) with Retry-After")
            } else {
                check(q == 200, "attempt 3 succeeds")
            }
        }
        let started = Date()
        let (h, _, _) = await Self.send(fcm, accessToken: at, body: Self.message(token: "slow"), timeout: 0.5)
        check(h == -1 && Date().timeIntervalSince(started) >= 0.4, "hang makes the client time out (\(h), \(Date().timeIntervalSince(started)) s)")
        check(await fcm.waitForMessages(count: 2, timeout: .seconds(1)), "waitForMessages(2)")
        check(await !fcm.waitForMessages(count: 3, timeout: .milliseconds(50)), "waitForMessages(3) times out")
        let msgs = fcm.messages
        check(msgs.count == 2 && msgs[1].deviceToken == "busy" && msgs[1].data["price"] == "201.5" && msgs[1].accessToken == at, "messages recorded")
        check(fcm.currentStats.distinctNotifications == 2 && fcm.currentStats.duplicateMessages == 0, "distinct/duplicates")

        fcm.revokeAllTokens()
        let (r, _, _) = await Self.send(fcm, accessToken: at, body: Self.message(token: "dev-a"))
        check(r == 401, "revoked token 401")

        // Webhooks.
        let secret = FakeWebhookReceiver.makeSecret()
        let hooks = try await FakeWebhookReceiver(secret: secret)
        let key = SymmetricKey(data: Data(base64Encoded: String(secret.dropFirst(6)))!)
        func sign(_ id: String, _ ts: Int, _ body: String) -> String {
            let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(ts).\(body)".utf8), using: key)
            return "v1," + Data(mac).base64EncodedString()
        }
        let now = Int(Date().timeIntervalSince1970)
        let body = #"{"type":"alert.triggered"}"#
        hooks.behaviour = { _, attempt in attempt == 1 ? .status(503, retryAfter: 2) : .status(204) }
        let (w1, _, wh1) = await Self.post(hooks.url, headers: ["webhook-id": "msg_1", "webhook-timestamp": "\(now)", "webhook-signature": "v1,AAAA " + sign("msg_1", now, body)], body: body)
        check(w1 == 503 && wh1["retry-after"] == "2", "webhook first attempt 503 + Retry-After")
        let (w2, _, _) = await Self.post(hooks.url, headers: ["webhook-id": "msg_1", "webhook-timestamp": "\(now)", "webhook-signature": sign("msg_1", now, body)], body: body)
        check(w2 == 204, "webhook second attempt 204")
        _ = await Self.post(hooks.url, headers: ["webhook-id": "msg_2", "webhook-timestamp": "\(now - 400)", "webhook-signature": sign("msg_2", now - 400, body)], body: body)
        _ = await Self.post(hooks.url, headers: ["webhook-id": "msg_3", "webhook-timestamp": "\(now)", "webhook-signature": sign("msg_3", now, body + " ")], body: body)
        check(await hooks.waitForRequests(count: 4, timeout: .seconds(1)), "waitForRequests(4)")
        let got = hooks.received
        check(got.map(\.signatureValid) == [true, true, false, false], "signature checks \(got.map { $0.signatureProblem ?? "valid" })")
        check(got[1].attempt == 2 && got[0].path == "/hook" && got[0].headers["webhook-id"] == "msg_1" && got[0].bodyString == body, "webhook recorded")

        // stop() must not wait for the hung connection.
        let stopStart = Date()
        await fcm.stop()
        await hooks.stop()
        check(Date().timeIntervalSince(stopStart) < 2, "stop() is prompt")
    }
}

func runSelfTest() async -> Never {
    var test = SelfTest()
    do {
        try await test.run()
    } catch {
        test.check(false, "threw \(error)")
    }
    print(test.failures == 0 ? "self-test passed" : "self-test: \(test.failures) failure(s)")
    exit(test.failures == 0 ? 0 : 1)
}
