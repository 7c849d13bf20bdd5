import Foundation
import GRDB
import Testing
import TestSupport
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer
@testable import StockwatchStore

/// Issue 20, item 3: numbers from outside (headers, JSON, quote files) never trap and are
/// clamped. Before the fix each `1e300` case crashed the process (Int64 of a huge double).
@Suite struct OutsideNumbersTests {
    let now = Date()
    var ts: Int { Int(now.timeIntervalSince1970) - 60 }

    func blockedUntil(_ store: TemporaryStore, _ provider: String) throws -> Date? {
        try store.database.read { try ProviderStateRecord.filter(Column("provider") == provider).fetchOne($0)?.blockedUntil }
    }

    // MARK: Retry-After from a provider

    @Test(arguments: [
        ("120", 120.0), ("1e300", 86_400), ("inf", 86_400), ("99999999999999999999999", 86_400), ("-5", 0), ("nan", nil), ("soon", nil),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 86_400), ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
    ] as [(String, Double?)])
    func retryAfterIsClampedToADay(header: String, seconds: Double?) {
        // HTTPTransport.retryAfter (webhook, FCM) reads the header through the same function.
        #expect(HTTPTransport.retryAfter(text: header, now: now) == seconds)
    }

    @Test(arguments: ["1e300", "inf", "Fri, 31 Dec 9999 23:59:59 GMT"])
    func aProviderRetryAfterOf1e300BlocksForADayAndFailsOver(header: String) async throws {
        let ts = self.ts
        let finnhub = try await FakeHTTPServer { _ in .respond(status: 429, headers: [("Retry-After", header)], body: "{}") }
        let stooq = try await FakeHTTPServer { _ in
            let stamp = FetchTests.warsaw(Date().addingTimeInterval(-120))
            return .respond(status: 200, body: "Symbol,Date,Time,Open,High,Low,Close,Volume\nAAPL.US,\(stamp.0),\(stamp.1),1,1,1,182.5,100\n")
        }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: fakeProviders(store, [(.finnhub, finnhub.baseURL), (.stooq, stooq.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["AAPL"], now: now)
        #expect(report.errors.map(\.code) == ["rate_limited"])
        #expect(report.exitStatus == .success)
        let blocked = try #require(try blockedUntil(store, "finnhub"))
        #expect(abs(blocked.timeIntervalSince(now) - 86_400) < 0.002)
        // The next run neither crashes nor asks finnhub.
        _ = try await service.run(symbols: ["AAPL"], now: now.addingTimeInterval(60))
        #expect(finnhub.requests.count == 1)
        _ = ts
        await finnhub.stop(); await stooq.stop()
    }

    // MARK: Retry-After from a webhook receiver and from FCM

    @Test func aWebhookRetryAfterOf1e300WaitsADayAtMost() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        receiver.behaviour = { _, _ in .statusWithRetryAfterText(503, "1e300") }
        var fixture = try NotifyFixture()
        var hook = ChannelConfig(name: "hook", type: .webhook)
        hook.url = receiver.url
        hook.secret = .file(fixture.store.write("hook.secret", receiver.secret))
        fixture.config.channels["hook"] = hook
        try fixture.notifications(1, user: try fixture.user("alice"), channels: ["hook"])
        try await expectOneRetryADayAway(fixture)
        #expect(receiver.requestCount == 1)
        await receiver.stop()
    }

    @Test func anFCMRetryAfterOf1e300WaitsADayAtMost() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        fake.behaviour = { _, _ in .errorWithRetryAfterText(.UNAVAILABLE, "1e300") }
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        try fixture.notifications(1, user: try fixture.user("alice", devices: ["tok-a"]), channels: ["phone"])
        try await expectOneRetryADayAway(fixture)
        await fake.stop()
    }

    /// One notify run: the one delivery waits for its retry a day (the clamp), not 1e300 s.
    func expectOneRetryADayAway(_ fixture: NotifyFixture) async throws {
        let start = Date()
        let report = try await fixture.service().run()
        #expect(report.deliveries.map(\.status) == [.retry])
        let delivery = try #require(try fixture.deliveries().first)
        let wait = delivery.nextAttemptAt.timeIntervalSince(start)
        #expect(wait >= 86_400 - 1 && wait <= 86_400 + 60, "\(wait)")
    }

    // MARK: expires_in of the OAuth grant

    @Test(arguments: [("1e300", 86_400.0), ("7200", 7_200), ("0", 3_600), ("-5", 3_600)])
    func expiresInIsClampedAndANonPositiveOneIsTheDocumentedHour(text: String, lifetime: Double) async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        fake.expiresInText = text
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        try fixture.notifications(1, user: try fixture.user("alice", devices: ["tok-a"]), channels: ["phone"])
        let start = Date()
        let report = try await fixture.service().run()
        #expect(report.deliveries.map(\.status) == [.sent])
        let expires = try fixture.database.read { try Int64.fetchOne($0, sql: "SELECT expires_at FROM access_tokens") }
        let seconds = Date(milliseconds: try #require(expires)).timeIntervalSince(start)
        #expect(seconds >= lifetime - 1 && seconds <= lifetime + 60, "\(seconds)")
        await fake.stop()
    }

    // MARK: Times in provider answers and quote files

    @Test func providerTimestampsOutOfRangeAreRefusedNotTrapped() async throws {
        let ts = self.ts
        let finnhub = try await FakeHTTPServer { request in
            .json(#"{"c":10,"pc":1e300,"t":\#(request.query("symbol") == "AAPL" ? "1e300" : "-1e300")}"#)
        }
        let fixer = try await FakeHTTPServer { _ in .json(#"{"success":true,"timestamp":1e300,"base":"EUR","rates":{"USD":1.2}}"#) }
        let stooq = try await FakeHTTPServer { _ in
            .respond(status: 200, body: "Symbol,Date,Time,Open,High,Low,Close,Volume\nIBM.US,99999-12-31,23:59:59,1,1,1,182.5,100\n")
        }
        let store = try TemporaryStore()
        var config = fakeProviders(store, [(.finnhub, finnhub.baseURL), (.fixer, fixer.baseURL)])
        let stocks = try await FetchService(database: store.database, config: config, environment: [:]).run(symbols: ["AAPL", "MSFT", "EUR/USD"], now: now)
        #expect(stocks.errors.map(\.code) == ["invalid_quote", "invalid_quote", "invalid_quote"])
        #expect(stocks.errors.allSatisfy { $0.message.contains("not a plausible Unix time") }, "\(stocks.errors.map(\.message))")
        config = fakeProviders(store, [(.stooq, stooq.baseURL)])
        let ibm = try await FetchService(database: store.database, config: config, environment: [:]).run(symbols: ["IBM"], now: now)
        #expect(ibm.exitStatus != .success)
        #expect(try store.database.read { try QuoteRecord.fetchCount($0) } == 0)
        _ = ts
        await finnhub.stop(); await fixer.stop(); await stooq.stop()
    }

    @Test(arguments: ["nan", "inf", "-inf", "1e300", "-1e300"])
    func quoteFileTimesOutOfRangeAreRefusedWithTheirLine(time: String) throws {
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: Config(), environment: [:])
        for input in ["AAPL,1,\(Int(now.timeIntervalSince1970))\nAAPL,2,\(time)\n", "# feed\n{\"symbol\":\"AAPL\",\"price\":2,\"time\":\"\(time)\"}\n"] {
            let error = expectError { _ = try service.ingest(Data(input.utf8), source: "feed.csv", now: now) }
            #expect(error?.exitStatus == .dataError)
            #expect(error?.message.hasPrefix("feed.csv: line 2: ") == true, "\(String(describing: error))")
        }
        #expect(try store.database.read { try QuoteRecord.fetchCount($0) } == 0)
    }

    @Test func millisecondsSaturateInsteadOfTrapping() {
        #expect(Date(timeIntervalSince1970: .nan).milliseconds == 0)
        #expect(Date(timeIntervalSince1970: 1e300).milliseconds == 253_402_300_799_000)
        #expect(Date(timeIntervalSince1970: .infinity).milliseconds == 253_402_300_799_000)
        #expect(Date(timeIntervalSince1970: -.infinity).milliseconds == -253_402_300_799_000)
        #expect(Date(timeIntervalSince1970: 1_800_000_000.25).milliseconds == 1_800_000_000_250)
    }
}
