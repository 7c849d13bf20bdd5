import Foundation
import GRDB
import Testing
import TestSupport
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore
@testable import StockwatchServer

/// A store with users, devices and notifications whose pending deliveries name `channels`.
struct NotifyFixture {
    let store: TemporaryStore
    var config = Config()
    let now = Date()

    init(migratedFrom migration: String? = nil) throws {
        store = try TemporaryStore(migratedFrom: migration)
        config.notify.leaseSeconds = 60
    }

    var database: AppDatabase { store.database }

    @discardableResult
    func user(_ name: String, devices: [String] = [], inactive: [String] = []) throws -> Int64 {
        try database.write { db in
            try db.execute(sql: "INSERT INTO users (name, token_hash, created_at) VALUES (?, ?, 0)", arguments: [name, String(repeating: "0", count: 63) + String(name.count)])
            let id = db.lastInsertedRowID
            for (token, active) in devices.map({ ($0, 1) }) + inactive.map({ ($0, 0) }) {
                try db.execute(
                    sql: "INSERT INTO devices (user_id, fcm_token, active, created_at, updated_at) VALUES (?, ?, ?, 0, 0)",
                    arguments: [id, token, active])
            }
            return id
        }
    }

    /// One notification per call, with one pending delivery per channel.
    @discardableResult
    func notifications(_ count: Int, user: Int64, channels: [String], message: String = "AAPL crossed above 200.00 at 201.35") throws -> [Int64] {
        let due = now.milliseconds
        return try database.write { db in
            var ids: [Int64] = []
            for _ in 0..<count {
                try db.execute(
                    sql: "INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at) VALUES (NULL, ?, 'AAPL', 201.35, ?, ?, ?)",
                    arguments: [user, due, message, due])
                let id = db.lastInsertedRowID
                ids.append(id)
                for channel in channels {
                    try db.execute(
                        sql: "INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, 'pending', 0, ?, ?, ?)",
                        arguments: [id, channel, due, due, due])
                }
            }
            return ids
        }
    }

    func service(_ lines: LineSink = LineSink()) -> NotifyService {
        NotifyService(database: database, config: config, environment: [:], writeLine: { lines.append($0) })
    }

    func deliveries() throws -> [DeliveryRecord] {
        try database.read { try DeliveryRecord.order(Column("id")).fetchAll($0) }
    }

    func count(_ sql: String) throws -> Int { try database.read { try Int.fetchOne($0, sql: sql)! } }

    mutating func fcmChannel(_ fake: FakeFCM, name: String = "phone") throws {
        let path = store.folder + "/\(name)-service-account.json"
        try fake.account.write(to: path, tokenURI: fake.tokenURI)
        var channel = ChannelConfig(name: name, type: .fcm)
        channel.serviceAccountFile = path
        channel.apiBaseURL = fake.baseURL
        channel.timeoutSeconds = 5
        config.channels[name] = channel
    }
}

final class LineSink: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}

@Suite struct BackoffTests {
    @Test func ceilingDoublesFromTheBaseAndStopsAtTheCap() {
        let backoff = Backoff(baseSeconds: 30, capSeconds: 3600)
        #expect((1...9).map { backoff.ceiling(afterAttempt: $0) } == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600])
    }

    @Test func delayIsJitteredWithinTheCeilingAndNeverBeforeRetryAfter() {
        let backoff = Backoff(baseSeconds: 30, capSeconds: 3600)
        var random = SystemRandomNumberGenerator()
        let delays = (0..<2000).map { _ in backoff.delay(afterAttempt: 3, retryAfter: nil, using: &random) }
        #expect(delays.allSatisfy { (0...120).contains($0) })
        // full jitter spreads retries over the whole range, not around the ceiling
        #expect(delays.contains { $0 < 30 } && delays.contains { $0 > 90 })
        #expect((0..<200).allSatisfy { _ in backoff.delay(afterAttempt: 1, retryAfter: 300, using: &random) >= 300 })
    }
}

@Suite struct FCMMessageTests {
    /// The message as it was built from strings before it was written into one buffer:
    /// the same bytes for every payload, channel and badge.
    @Test(arguments: [nil, 0, 3] as [Int?])
    func theMessageIsTheSameBytesAsTheStringBuiltOne(badge: Int?) {
        let now = Date(timeIntervalSince1970: 1_800_000_100.75)
        var plain = ChannelConfig(name: "phone", type: .fcm)
        var dressed = plain
        dressed.ttlSeconds = 0
        dressed.clickAction = "PRICE \"ALERT\"\n"
        plain.ttlSeconds = 86_400
        for (index, text) in ["up", "He said \"sell\"\\ now\n\t\u{01} € 📉", ""].enumerated() {
            for alert in [nil, 42, Int64.max] as [Int64?] {
                let payload = NotificationPayload(
                    id: Int64(index) * 1_000_003 + 1, alertId: alert, user: "a", symbol: index == 1 ? "EUR/\"USD" : "AAPL", price: [190, 1.0724, -0.000123][index],
                    observedAt: Date(timeIntervalSince1970: 1_800_000_000.999), message: text)
                for channel in [plain, dressed] {
                    let written = FCMSender.message(for: payload, token: "t\"k\(index)", channel: channel, now: now, badge: badge)
                    let built = Self.referenceMessage(for: payload, token: "t\"k\(index)", channel: channel, now: now, badge: badge)
                    #expect(String(decoding: written, as: UTF8.self) == String(decoding: built, as: UTF8.self))
                }
            }
        }
    }

    static func referenceMessage(for notification: NotificationPayload, token: String, channel: ChannelConfig, now: Date, badge: Int? = nil) -> Data {
        let q = JSONText.quoted
        let data = [
            ("notification_id", String(notification.id)),
            ("alert_id", notification.alertId.map { String($0) } ?? ""),
            ("symbol", notification.symbol),
            ("price", notification.price.formattedNumber),
            ("observed_at", notification.observedAt.formatted(.iso8601)),
        ].map { q($0.0) + ":" + q($0.1) }.joined(separator: ",")
        let ttl = channel.effectiveTTLSeconds
        // APNs: 0 means deliver now or never; otherwise an absolute time.
        let expiration = ttl == 0 ? 0 : Int64(now.timeIntervalSince1970) + ttl
        let collapse = notification.alertId.map { "alert-\($0)" }
        var android = #""priority":"HIGH","ttl":"\#(ttl)s""#
        if let collapse { android += #","collapse_key":"# + q(collapse) }
        android += #","notification":{"tag":"# + q(notification.symbol)
        if let action = channel.clickAction { android += #","click_action":"# + q(action) }
        android += "}"
        var apnsHeaders = #""apns-priority":"10","apns-expiration":"\#(expiration)""#
        if let collapse { apnsHeaders += #","apns-collapse-id":"# + q(collapse) }
        var aps = #""sound":"default","thread-id":"# + q(notification.symbol)
        if let action = channel.clickAction { aps += #","category":"# + q(action) }
        if let badge { aps += #","badge":\#(badge)"# }
        let text = #"{"message":{"token":"# + q(token)
            + #","notification":{"title":"# + q("\(notification.symbol) alert") + #","body":"# + q(notification.message)
            + #"},"data":{"# + data
            + #"},"android":{"# + android + #"},"apns":{"headers":{"# + apnsHeaders + #"},"payload":{"aps":{"# + aps + "}}}}}"
        return Data(text.utf8)
    }

    @Test func theHandWrittenMessageIsJSONThatKeepsEveryCharacter() throws {
        let tricky = "He said \"sell\"\\ now\n\t\u{01} € 📉"
        let payload = NotificationPayload(id: 7, alertId: nil, user: "a", symbol: "EUR/USD", price: 1.0724, observedAt: Date(timeIntervalSince1970: 1_800_000_000), message: tricky)
        let channel = ChannelConfig(name: "phone", type: .fcm)
        let object = try #require(try JSONSerialization.jsonObject(
            with: FCMSender.message(for: payload, token: "t\"k", channel: channel, now: Date())) as? [String: Any])
        let message = try #require(object["message"] as? [String: Any])
        #expect(message["token"] as? String == "t\"k")
        #expect((message["notification"] as? [String: String])?["body"] == tricky)
        #expect(message["data"] as? [String: String] == [
            "notification_id": "7", "alert_id": "", "symbol": "EUR/USD", "price": "1.0724", "observed_at": "2027-01-15T08:00:00Z",
        ])
        #expect((message["android"] as? [String: Any])?["priority"] as? String == "HIGH")
        // No alert (it was removed): nothing to collapse on.
        #expect((message["android"] as? [String: Any])?["collapse_key"] == nil)
    }

    /// Expiry, collapse per alert, grouping per symbol and the app's button category, in
    /// both Android's and APNs' fields.
    @Test func aPushExpiresCollapsesPerAlertAndGroupsPerSymbol() throws {
        let payload = NotificationPayload(id: 8, alertId: 42, user: "a", symbol: "AAPL", price: 190, observedAt: Date(timeIntervalSince1970: 1_800_000_000), message: "up")
        var channel = ChannelConfig(name: "phone", type: .fcm)
        let now = Date(timeIntervalSince1970: 1_800_000_100)
        func fields(_ channel: ChannelConfig) throws -> (android: [String: Any], apns: [String: Any]) {
            let object = try #require(try JSONSerialization.jsonObject(with: FCMSender.message(for: payload, token: "t", channel: channel, now: now)) as? [String: Any])
            let message = try #require(object["message"] as? [String: Any])
            return (try #require(message["android"] as? [String: Any]), try #require(message["apns"] as? [String: Any]))
        }
        var (android, apns) = try fields(channel)
        var headers = try #require(apns["headers"] as? [String: String])
        var aps = try #require((apns["payload"] as? [String: Any])?["aps"] as? [String: Any])
        #expect(android["ttl"] as? String == "3600s")  // the default: an hour
        #expect(headers["apns-expiration"] == "1800003700")
        #expect(android["collapse_key"] as? String == "alert-42" && headers["apns-collapse-id"] == "alert-42")
        #expect((android["notification"] as? [String: String]) == ["tag": "AAPL"])
        #expect(aps["thread-id"] as? String == "AAPL" && aps["category"] == nil)

        channel.ttlSeconds = 0
        channel.clickAction = "PRICE_ALERT"
        (android, apns) = try fields(channel)
        headers = try #require(apns["headers"] as? [String: String])
        aps = try #require((apns["payload"] as? [String: Any])?["aps"] as? [String: Any])
        #expect(android["ttl"] as? String == "0s")
        #expect(headers["apns-expiration"] == "0")  // now or never
        #expect((android["notification"] as? [String: String])?["click_action"] == "PRICE_ALERT")
        #expect(aps["category"] as? String == "PRICE_ALERT")
    }
}

@Suite struct DeliveryQueueTests {
    @Test func concurrentClaimersNeverGetTheSameDelivery() async throws {
        var fixture = try NotifyFixture()
        fixture.config.channels["log"] = ChannelConfig(name: "log", type: .stdout)
        let alice = try fixture.user("alice")
        try fixture.notifications(400, user: alice, channels: ["log"])
        let path = fixture.database.path
        let settings = fixture.config.notify
        // four claimers, each with its own connection pool like separate processes
        let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let queue = DeliveryQueue(database: try AppDatabase(path: path), settings: settings, fanOutChannels: [])
                    var mine: [Int64] = []
                    while true {
                        let batch = try await queue.claim(channels: ["log"], limit: 7, cutoff: Date())
                        if batch.jobs.isEmpty { return mine }
                        mine += batch.jobs.map(\.deliveryID)
                    }
                }
            }
            return try await group.reduce(into: [Int64]()) { $0 += $1 }
        }
        #expect(claimed.count == 400)
        #expect(Set(claimed).count == 400)
        #expect(try fixture.count("SELECT count(*) FROM deliveries WHERE status = 'sending' AND attempts = 1") == 400)
    }

    @Test func anExpiredLeaseIsClaimedAgainAndTheLateOutcomeIsDropped() async throws {
        var fixture = try NotifyFixture()
        fixture.config.channels["log"] = ChannelConfig(name: "log", type: .stdout)
        try fixture.notifications(1, user: try fixture.user("alice"), channels: ["log"])
        let queue = DeliveryQueue(database: fixture.database, settings: fixture.config.notify, fanOutChannels: [])
        let t0 = fixture.now
        let first = try await queue.claim(channels: ["log"], limit: 10, cutoff: t0, now: t0).jobs
        #expect(first.map(\.attempt) == [1])
        // still leased: nobody else gets it
        #expect(try await queue.claim(channels: ["log"], limit: 10, cutoff: t0, now: t0.addingTimeInterval(59)).jobs.isEmpty)
        // the first claimer died (or hangs): after the lease another run takes it
        let second = try await queue.claim(channels: ["log"], limit: 10, cutoff: t0, now: t0.addingTimeInterval(61)).jobs
        #expect(second.map(\.attempt) == [2])
        var random = SystemRandomNumberGenerator()
        #expect(try await queue.record([(first[0], .failed("late"))], now: t0.addingTimeInterval(62), random: &random).isEmpty)
        let recorded = try await queue.record([(second[0], .sent)], now: t0.addingTimeInterval(62), random: &random)
        #expect(recorded.map(\.status) == [.sent])
        #expect(try fixture.deliveries().map(\.status) == [.sent])
        #expect(try fixture.count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'sent' AND attempt = 2") == 1)
    }
}

@Suite struct NotifyServiceTests {
    @Test func stdoutPrintsOneLinePerNotificationAndRecordsSent() async throws {
        let fixture = try NotifyFixture()
        let ids = try fixture.notifications(2, user: try fixture.user("alice"), channels: ["stdout"])
        let lines = LineSink()
        let report = try await fixture.service(lines).run()
        #expect(report.exitStatus == .success)
        #expect(report.deliveries.map(\.status) == [.sent, .sent])
        #expect(lines.lines.count == 2)
        // sends run concurrently, so the two lines may come in either order
        for id in ids {
            #expect(lines.lines.contains { $0.contains("alice: AAPL crossed above 200.00 at 201.35 (notification \(id))") })
        }
        // nothing is due any more
        #expect(try await fixture.service().run().deliveries.isEmpty)
    }

    @Test func fcmSendsToEveryActiveDeviceAndReusesTheCachedTokenInTheNextRun() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        let alice = try fixture.user("alice", devices: ["tok-a", "tok-b"], inactive: ["tok-old"])
        let ids = try fixture.notifications(1, user: alice, channels: ["phone"])
        let report = try await fixture.service().run()
        #expect(report.exitStatus == .success)
        #expect(report.deliveries.map(\.target) == ["device:1", "device:2"])
        #expect(Set(fake.messages.map(\.deviceToken)) == ["tok-a", "tok-b"])
        #expect(fake.rejections.isEmpty)
        let message = try #require(fake.messages.first)
        #expect(message.title == "AAPL alert")
        #expect(message.body == "AAPL crossed above 200.00 at 201.35")
        #expect(message.data["notification_id"] == String(ids[0]))
        #expect(message.data["symbol"] == "AAPL" && message.data["price"] == "201.35")
        #expect(fake.tokenRequests == 1)

        // a new run (a new process in production) finds the token in the database
        try fixture.notifications(1, user: alice, channels: ["phone"])
        let fresh = NotifyService(database: try AppDatabase(path: fixture.database.path), config: fixture.config, environment: [:])
        #expect(try await fresh.run().exitStatus == .success)
        #expect(fake.messageCount == 4)
        #expect(fake.tokenRequests == 1)
        await fake.stop()
    }

    @Test func anFCMAnswer401RefreshesTheTokenOnce() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        let alice = try fixture.user("alice", devices: ["tok-a"])
        try fixture.notifications(1, user: alice, channels: ["phone"])
        _ = try await fixture.service().run()
        fake.revokeAllTokens()  // the cached token is now refused with 401
        try fixture.notifications(1, user: alice, channels: ["phone"])
        let report = try await fixture.service().run()
        #expect(report.deliveries.map(\.status) == [.sent])
        #expect(fake.tokenRequests == 2)
        await fake.stop()
    }

    @Test func aUserWithoutActiveDevicesGetsAFailedDeliveryThatSaysSo() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        try fixture.notifications(1, user: try fixture.user("bob", inactive: ["old"]), channels: ["phone"])
        let report = try await fixture.service().run()
        #expect(report.exitStatus == .temporary)
        #expect(report.deliveries.map(\.status) == [.failed])
        #expect(report.deliveries.first?.error?.contains("no active device") == true)
        #expect(fake.sendRequests == 0)
        await fake.stop()
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var outcome: FCMOutcome
        var status: DeliveryStatus
        var deactivates: Bool
        var minimumDelay: TimeInterval
        var says: String
        var testDescription: String { says }
    }

    @Test(arguments: [
        ErrorCase(outcome: .error(.UNREGISTERED), status: .failed, deactivates: true, minimumDelay: 0, says: "UNREGISTERED"),
        ErrorCase(outcome: .error(.INVALID_ARGUMENT), status: .failed, deactivates: true, minimumDelay: 0, says: "invalid token"),
        ErrorCase(outcome: .error(.SENDER_ID_MISMATCH), status: .failed, deactivates: false, minimumDelay: 0, says: "another Firebase project"),
        ErrorCase(outcome: .error(.THIRD_PARTY_AUTH_ERROR), status: .failed, deactivates: false, minimumDelay: 0, says: "APNs key or certificate"),
        ErrorCase(outcome: .error(.QUOTA_EXCEEDED), status: .retry, deactivates: false, minimumDelay: 60, says: "QUOTA_EXCEEDED"),
        ErrorCase(outcome: .error(.UNAVAILABLE, retryAfter: 600), status: .retry, deactivates: false, minimumDelay: 600, says: "UNAVAILABLE"),
        ErrorCase(outcome: .error(.INTERNAL), status: .retry, deactivates: false, minimumDelay: 0, says: "INTERNAL"),
    ])
    func fcmErrorCodesDecideBetweenRetryFailureAndDeactivation(_ errorCase: ErrorCase) async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        fake.behaviour = { _, _ in errorCase.outcome }
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        try fixture.notifications(1, user: try fixture.user("alice", devices: ["tok-a"]), channels: ["phone"])
        let start = Date()
        let report = try await fixture.service().run()
        let delivery = try #require(try fixture.deliveries().first)
        #expect(delivery.status == errorCase.status)
        #expect(report.exitStatus == .temporary)
        #expect(delivery.lastError?.contains(errorCase.says) == true, "\(delivery.lastError ?? "")")
        #expect(delivery.nextAttemptAt.timeIntervalSince(start) >= errorCase.minimumDelay - 1)
        let active = try fixture.count("SELECT active FROM devices")
        #expect(active == (errorCase.deactivates ? 0 : 1))
        #expect(try fixture.count("SELECT count(*) FROM delivery_attempts WHERE error IS NOT NULL") == 1)
        await fake.stop()
    }

    @Test func aDeliveryThatKeepsFailingIsDeadAfterMaxAttempts() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        fake.behaviour = { _, _ in .error(.UNAVAILABLE) }
        var fixture = try NotifyFixture()
        fixture.config.notify.maxAttempts = 3
        try fixture.fcmChannel(fake)
        try fixture.notifications(1, user: try fixture.user("alice", devices: ["tok-a"]), channels: ["phone"])
        var statuses: [DeliveryStatus] = []
        for hour in 0..<4 {
            // each run comes after the backoff (at most an hour)
            let report = try await fixture.service().run(now: fixture.now.addingTimeInterval(Double(hour) * 3601))
            statuses += report.deliveries.map(\.status)
        }
        #expect(statuses == [.retry, .retry, .dead])
        let delivery = try #require(try fixture.deliveries().first)
        #expect(delivery.lastError?.hasPrefix("gave up after 3 attempts") == true)
        #expect(try fixture.count("SELECT count(*) FROM delivery_attempts") == 3)
        #expect(fake.sendRequests == 3)
        await fake.stop()
    }

    /// And the refusal is asked for once in a run, however many sends wait on it: one at a
    /// time here, where each used to ask again after the last request had failed.
    @Test func aRefusedServiceAccountTokenSaysToCheckTheClock() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        fixture.config.notify.concurrency = 1
        try fixture.fcmChannel(fake)
        // the same account, but a key the token server does not know
        try FakeFCM.makeServiceAccount().write(to: fixture.config.channels["phone"]!.serviceAccountFile!, tokenURI: fake.tokenURI)
        try fixture.notifications(5, user: try fixture.user("alice", devices: ["tok-a"]), channels: ["phone"])
        let report = try await fixture.service().run()
        #expect(report.deliveries.map(\.status) == Array(repeating: .retry, count: 5))
        #expect(fake.tokenRequests == 1)
        let error = try #require(report.deliveries.first?.error)
        #expect(error.contains("invalid_grant") && error.contains("clock"))
        #expect(!error.contains("PRIVATE KEY"))
        await fake.stop()
    }

    @Test func webhooksAreSignedAndTheirStatusDecidesTheOutcome() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        receiver.behaviour = { id, _ in id == "2" ? .status(500) : id == "3" ? .status(410) : .status(204) }
        var fixture = try NotifyFixture()
        var hook = ChannelConfig(name: "hook", type: .webhook)
        hook.url = receiver.url
        hook.secret = .file(fixture.store.write("hook.secret", receiver.secret))
        fixture.config.channels["hook"] = hook
        try fixture.notifications(3, user: try fixture.user("alice"), channels: ["hook"])
        let report = try await fixture.service().run()
        #expect(report.deliveries.map(\.status) == [.sent, .retry, .failed])
        #expect(receiver.received.count == 3)
        #expect(receiver.badSignatureCount == 0)
        let body = try JSONSerialization.jsonObject(with: try #require(receiver.received.first { $0.webhookID == "1" }).body) as? [String: Any]
        #expect(body?["id"] as? Int == 1)
        #expect(body?["message"] as? String == "AAPL crossed above 200.00 at 201.35")
        #expect(report.deliveries[2].error?.contains("410") == true)
        await receiver.stop()
    }

    @Test func aChannelsCAFileIsTheOnlyTrustOfItsHTTPS() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret(), tls: true)
        var fixture = try NotifyFixture()
        for (name, caFile) in [("trusting", fixture.store.write("ca.pem", TestCertificate.certificatePEM)), ("system", nil), ("garbage", fixture.store.write("bad.pem", "not a certificate"))] {
            var hook = ChannelConfig(name: name, type: .webhook)
            hook.url = receiver.url
            hook.secret = .file(fixture.store.write("\(name).secret", receiver.secret))
            hook.caFile = caFile
            hook.timeoutSeconds = 3
            fixture.config.channels[name] = hook
        }
        try fixture.notifications(1, user: try fixture.user("alice"), channels: ["trusting", "system", "garbage"])
        let report = try await fixture.service().run()
        let byChannel = Dictionary(uniqueKeysWithValues: report.deliveries.map { ($0.channel, $0) })
        #expect(receiver.url.hasPrefix("https://"))
        #expect(byChannel["trusting"]?.status == .sent)
        // The system's roots do not know the test's certificate: the handshake fails.
        #expect(byChannel["system"]?.status == .retry)
        #expect(byChannel["system"]?.error?.contains("TLS failed") == true, "\(byChannel["system"]?.error ?? "")")
        #expect(receiver.acceptedCounts.values.reduce(0, +) == 1)
        // An unreadable ca_file is the channel's config error; its delivery waits.
        #expect(report.configErrors.map(\.message).joined().contains("channels.garbage.ca_file"))
        #expect(try fixture.deliveries().filter { $0.channel == "garbage" }.map(\.status) == [.pending])
        await receiver.stop()
    }

    @Test func aMalformedWebhookSecretIsAConfigErrorAndItsDeliveriesWait() async throws {
        var fixture = try NotifyFixture()
        var hook = ChannelConfig(name: "hook", type: .webhook)
        hook.url = "http://127.0.0.1:9/hook"
        hook.secret = .file(fixture.store.write("hook.secret", "not-a-whsec-secret"))
        fixture.config.channels["hook"] = hook
        try fixture.notifications(1, user: try fixture.user("alice"), channels: ["hook", "gone"])
        let report = try await fixture.service().run()
        #expect(report.exitStatus == .config)
        #expect(report.configErrors.map(\.message).joined().contains("whsec_"))
        #expect(report.configErrors.map(\.message).joined().contains("'gone'"))
        #expect(!report.configErrors.map(\.message).joined().contains("not-a-whsec-secret"))
        #expect(try fixture.deliveries().map(\.status) == [.pending, .pending])
    }

    @Test func execGetsTheNotificationOnStdinAndAFailureKeepsItsLastStderrLine() async throws {
        var fixture = try NotifyFixture()
        let out = fixture.store.folder + "/received.json"
        let ok = fixture.store.write("ok.sh", "#!/bin/sh\ncat > '\(out)'\n", mode: 0o700)
        let bad = fixture.store.write("bad.sh", "#!/bin/sh\necho 'first' >&2\necho 'pager is down' >&2\nexit 3\n", mode: 0o700)
        let slow = fixture.store.write("slow.sh", "#!/bin/sh\nexec sleep 30\n", mode: 0o700)
        for (name, path) in [("ok", ok), ("bad", bad), ("slow", slow)] {
            var channel = ChannelConfig(name: name, type: .exec)
            channel.command = [path]
            channel.timeoutSeconds = 1
            fixture.config.channels[name] = channel
        }
        let ids = try fixture.notifications(1, user: try fixture.user("alice"), channels: ["ok", "bad", "slow"])
        let report = try await fixture.service().run()
        let byChannel = Dictionary(uniqueKeysWithValues: report.deliveries.map { ($0.channel, $0) })
        #expect(byChannel["ok"]?.status == .sent)
        #expect(byChannel["bad"]?.status == .retry)
        #expect(byChannel["bad"]?.error?.hasSuffix("exited with status 3: pager is down") == true)
        #expect(byChannel["slow"]?.status == .retry)
        #expect(byChannel["slow"]?.error?.contains("longer than 1 s") == true)
        let payload = try JSONDecoder().decode([String: JSONValue].self, from: try Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(payload["id"] == .number(Double(ids[0])))
        #expect(payload["user"] == .string("alice"))
    }

    /// Issue 14, item 3: stderr is read while the program runs. Before, a program writing
    /// more than a pipe's 64 KiB blocked until the timeout killed it, and was retried.
    @Test func execReadsStderrWhileTheProgramRunsAndKeepsItsLastLine() async throws {
        var fixture = try NotifyFixture()
        let chatty = fixture.store.write("chatty.sh", "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' 'x' >&2\necho >&2\nexit 0\n", mode: 0o700)
        let chattyFailing = fixture.store.write("chatty-failing.sh", "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' 'x' >&2\necho >&2\necho 'disk full' >&2\nexit 4\n", mode: 0o700)
        // Leaves a child holding stderr open: the program's own exit decides, not the pipe's.
        let leaver = fixture.store.write("leaver.sh", "#!/bin/sh\nsleep 30 &\necho 'started' >&2\nexit 0\n", mode: 0o700)
        for (name, path) in [("chatty", chatty), ("failing", chattyFailing), ("leaver", leaver)] {
            var channel = ChannelConfig(name: name, type: .exec)
            channel.command = [path]
            channel.timeoutSeconds = 5
            fixture.config.channels[name] = channel
        }
        try fixture.notifications(1, user: try fixture.user("alice"), channels: ["chatty", "failing", "leaver"])
        let report = try await fixture.service().run()
        let byChannel = Dictionary(uniqueKeysWithValues: report.deliveries.map { ($0.channel, $0) })
        #expect(byChannel["chatty"]?.status == .sent)
        #expect(byChannel["leaver"]?.status == .sent)
        #expect(byChannel["failing"]?.status == .retry)
        #expect(byChannel["failing"]?.error?.hasSuffix("exited with status 4: disk full") == true)
        // `sent` means none of them was stopped at the 5 s timeout (that would be `retry`).
    }

    /// Issue 14, item 3: building an exec channel (as `config check` does) leaves the
    /// process's SIGPIPE alone; only a send sets it to ignored.
    @Test func buildingAnExecChannelLeavesSIGPIPEAlone() throws {
        let store = try TemporaryStore()
        let program = store.write("ok.sh", "#!/bin/sh\nexit 0\n", mode: 0o700)
        var channel = ChannelConfig(name: "ok", type: .exec)
        channel.command = [program]
        // A handler of our own that does nothing (not SIG_DFL: another test writing to a
        // closed pipe meanwhile must not kill the test process).
        var previous = sigaction()
        var ours = sigaction()
        ours.__sigaction_handler.sa_handler = { _ in }
        sigaction(SIGPIPE, &ours, &previous)
        defer { sigaction(SIGPIPE, &previous, nil) }
        _ = try ExecSender(channel: channel)
        var now = sigaction()
        sigaction(SIGPIPE, nil, &now)
        #expect(unsafeBitCast(now.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(ours.__sigaction_handler.sa_handler, to: Int.self))
    }
}

/// Enough of JSON to compare decoded values in tests.
enum JSONValue: Decodable, Equatable {
    case string(String), number(Double), bool(Bool), null, other
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null } else if let s = try? c.decode(String.self) { self = .string(s) } else if let n = try? c.decode(Double.self) { self = .number(n) } else if let b = try? c.decode(Bool.self) { self = .bool(b) } else { self = .other }
    }
}
