import Foundation
import Testing
import TestSupport
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer
@testable import StockwatchStore

/// Issue 20, item 6: redirects are never followed. AsyncHTTPClient keeps custom headers
/// across origins, so a provider answering 302 to another host handed it X-Finnhub-Token.
@Suite struct RedirectTests {
    let now = Date()

    @Test func aProviderRedirectIsNotFollowedAndFailsOver() async throws {
        let elsewhere = try await FakeHTTPServer { _ in .json(#"{"c":1,"t":1}"#) }
        let target = elsewhere.baseURL + "/quote?symbol=AAPL"
        let finnhub = try await FakeHTTPServer { _ in .respond(status: 302, headers: [("Location", target)], body: "") }
        let stamp = FetchTests.warsaw(now.addingTimeInterval(-120))
        let stooq = try await FakeHTTPServer { _ in
            .respond(status: 200, body: "Symbol,Date,Time,Open,High,Low,Close,Volume\nAAPL.US,\(stamp.0),\(stamp.1),1,1,1,182.5,100\n")
        }
        let store = try TemporaryStore()
        let config = fakeProviders(store, [(.finnhub, finnhub.baseURL), (.stooq, stooq.baseURL)])
        let report = try await FetchService(database: store.database, config: config, environment: [:]).run(symbols: ["AAPL"], now: now)
        #expect(elsewhere.requests.isEmpty)
        #expect(finnhub.requests.count == 1)
        #expect(report.exitStatus == .success)
        let message = try #require(report.errors.first?.message)
        #expect(message == "finnhub: HTTP 302, a redirect to \(elsewhere.baseURL), which is never followed; check base_url")
        #expect(try store.database.read { try QuoteRecord.fetchAll($0) }.map(\.provider) == ["stooq"])
        await finnhub.stop(); await stooq.stop(); await elsewhere.stop()
    }

    @Test func aWebhookRedirectIsNotFollowedAndRetried() async throws {
        let elsewhere = try await FakeHTTPServer { _ in .respond(status: 200, body: "") }
        let target = elsewhere.baseURL + "/stolen"
        let hookServer = try await FakeHTTPServer { _ in .respond(status: 307, headers: [("Location", target)], body: "") }
        var fixture = try NotifyFixture()
        var hook = ChannelConfig(name: "hook", type: .webhook)
        hook.url = hookServer.baseURL + "/hook"
        hook.secret = .file(fixture.store.write("hook.secret", FakeWebhookReceiver.makeSecret()))
        fixture.config.channels["hook"] = hook
        try fixture.notifications(1, user: try fixture.user("alice"), channels: ["hook"])
        let report = try await fixture.service().run()
        #expect(elsewhere.requests.isEmpty)
        #expect(hookServer.requests.count == 1)
        #expect(report.deliveries.map(\.status) == [.retry])
        #expect(report.deliveries.first?.error?.contains("HTTP 307, a redirect, which is never followed") == true)
        await hookServer.stop(); await elsewhere.stop()
    }

    /// FCM's token endpoint and its send URL: neither redirect is followed, so neither
    /// the signed grant nor the bearer token reaches another host; the delivery retries.
    @Test(arguments: ["token", "send"])
    func anFCMRedirectIsNotFollowed(_ endpoint: String) async throws {
        let elsewhere = try await FakeHTTPServer { _ in .json(#"{"access_token":"stolen","expires_in":3600,"token_type":"Bearer"}"#) }
        let redirector = try await FakeHTTPServer { _ in .respond(status: 302, headers: [("Location", elsewhere.baseURL + "/elsewhere")], body: "") }
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        let path = fixture.store.folder + "/phone-service-account.json"
        if endpoint == "token" {
            try fake.account.write(to: path, tokenURI: redirector.baseURL + "/token")
        } else {
            fixture.config.channels["phone"]!.apiBaseURL = redirector.baseURL
        }
        let alice = try fixture.user("alice", devices: ["tok-a"])
        try fixture.notifications(1, user: alice, channels: ["phone"])
        let report = try await fixture.service().run()
        #expect(elsewhere.requests.isEmpty)
        #expect(redirector.requests.count == 1)
        #expect(fake.messages.isEmpty)
        #expect(report.deliveries.map(\.status) == [.retry])
        #expect(report.deliveries.first?.error?.contains("redirect") == true, "\(report.deliveries)")
        await redirector.stop(); await elsewhere.stop(); await fake.stop()
    }
}
