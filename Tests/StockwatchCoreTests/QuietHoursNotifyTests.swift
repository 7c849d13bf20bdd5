import Foundation
import Testing
import TestSupport
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore

/// notify and quiet hours: a push waits while it is quiet on its user's clock, the other
/// channels do not (unless told to), and a change of quiet hours releases what waited.
@Suite struct QuietHoursNotifyTests {
    /// Quiet hours around the current minute, on a UTC clock.
    static func quietNow() -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.hour, .minute], from: Date())
        let minute = parts.hour! * 60 + parts.minute!
        return QuietHours(start: (minute + 1440 - 60) % 1440, end: (minute + 60) % 1440).description
    }

    @Test func aPushWaitsForTheEndOfQuietHoursAndAChangeReleasesIt() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        var hook = ChannelConfig(name: "log", type: .stdout)
        hook.holdsForQuietHours = nil
        fixture.config.channels["log"] = hook
        let alice = try fixture.user("alice", devices: ["tok-a"])
        let bob = try fixture.user("bob", devices: ["tok-b"])
        let users = UserService(database: fixture.database)
        _ = try users.change(userID: alice, .init(quietHours: .some(Self.quietNow())))
        try fixture.notifications(1, user: alice, channels: ["phone", "log"])
        try fixture.notifications(1, user: bob, channels: ["phone"])

        let night = try await fixture.service().run()
        #expect(night.held == 1)
        #expect(fake.messages.map(\.deviceToken) == ["tok-b"])  // bob has no quiet hours
        #expect(Set(night.deliveries.map(\.channel)) == ["phone", "log"])  // alice's log line went out
        let waiting = try fixture.deliveries().filter { $0.channel == "phone" && $0.status == .pending }
        #expect(waiting.count == 1 && waiting.first?.attempts == 0)
        #expect(waiting.first?.lastError?.hasPrefix("held for quiet hours (\(Self.quietNow()), UTC) until ") == true)
        #expect((waiting.first?.nextAttemptAt ?? .distantPast) > Date().addingTimeInterval(59 * 60))
        #expect(try await fixture.service().run().deliveries.isEmpty)  // not due again before the end

        // alice turns her quiet hours off: the held push is due at once.
        _ = try users.change(userID: alice, .init(quietHours: .some(nil)))
        let morning = try await fixture.service().run()
        #expect(morning.held == 0 && morning.deliveries.map(\.status) == [.sent])
        #expect(fake.messages.map(\.deviceToken) == ["tok-b", "tok-a"])
        await fake.stop()
    }

    @Test func aChannelToldToHoldWaitsAndAnFCMChannelToldToIgnoreDoesNot() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        fixture.config.channels["phone"]!.holdsForQuietHours = false
        var log = ChannelConfig(name: "log", type: .stdout)
        log.holdsForQuietHours = true
        fixture.config.channels["log"] = log
        let alice = try fixture.user("alice", devices: ["tok-a"])
        _ = try UserService(database: fixture.database).change(userID: alice, .init(timezone: "UTC", quietHours: .some(Self.quietNow())))
        try fixture.notifications(1, user: alice, channels: ["phone", "log"])
        let report = try await fixture.service().run()
        #expect(report.held == 1)
        #expect(report.deliveries.map(\.channel) == ["phone"])
        #expect(fake.messages.count == 1)
        await fake.stop()
    }
}
