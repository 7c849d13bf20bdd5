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
        hook.quietHours = nil
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
        fixture.config.channels["phone"]!.quietHours = .ignore
        var log = ChannelConfig(name: "log", type: .stdout)
        log.quietHours = .hold
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

    /// Three pushes held for one phone go out as one digest when quiet hours end; each
    /// delivery is recorded sent, and the push names the notifications it stands for.
    @Test func heldPushesGoOutAsOneDigestPerDevice() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        let alice = try fixture.user("alice", devices: ["tok-a", "tok-b"])
        let users = UserService(database: fixture.database)
        _ = try users.change(userID: alice, .init(quietHours: .some(Self.quietNow())))
        let ids = try fixture.notifications(3, user: alice, channels: ["phone"])
        #expect(try await fixture.service().run().held == 6)  // 3 notifications x 2 phones
        #expect(fake.messages.isEmpty)

        _ = try users.change(userID: alice, .init(quietHours: .some(nil)))
        let morning = try await fixture.service().run()
        #expect(morning.deliveries.count == 6 && morning.deliveries.allSatisfy { $0.status == .sent && $0.attempts == 1 })
        #expect(fake.messages.count == 2)  // one digest per phone
        #expect(Set(fake.messages.map(\.deviceToken)) == ["tok-a", "tok-b"])
        for message in fake.messages {
            #expect(message.data["type"] == "digest")
            #expect(message.data["notification_ids"] == ids.map(String.init).joined(separator: ","))
            #expect(message.title == "3 alerts during your quiet hours")
        }

        // A push that was never held is a plain one again.
        try fixture.notifications(1, user: alice, channels: ["phone"])
        _ = try await fixture.service().run()
        #expect(fake.messages.count == 4 && fake.messages.suffix(2).allSatisfy { $0.data["type"] == nil })
        await fake.stop()
    }

    /// A digest stays under FCM's 4 KB: at most 100 notifications to a push.
    @Test func aLongNightIsSeveralDigests() {
        var clock = QuietClock()
        clock.digestChannels = ["phone"]
        let device = DeliveryJob.Device(id: 1, fcmToken: "tok", active: true)
        let jobs = (1...250).map { n in
            DeliveryJob(deliveryID: Int64(n), attempt: 1, channel: "phone", notification: NotificationPayload(
                id: Int64(n), alertId: 1, user: "alice", symbol: "AAPL", price: 1, observedAt: Date(), message: "m"), device: device, heldForQuietHours: true)
        }
        let digests = clock.digested(jobs)
        #expect(digests.map { $0.companions.count + 1 } == [100, 100, 50])
        let order: [Int64] = digests.flatMap { digest -> [Int64] in [digest.deliveryID] + digest.companions.map(\.deliveryID) }
        #expect(order == Array(1...250))
        let body = FCMSender.digest(of: ([digests[0]] + digests[0].companions).map(\.notification), token: "tok", channel: ChannelConfig(name: "phone", type: .fcm), now: Date())
        #expect(body.count < 4096)
    }

    /// The iOS badge is the user's unread count when the push is claimed: it goes down as
    /// the app reads, and a digest carries it too.
    @Test func thePushCarriesTheUnreadCountAsItsBadge() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        let alice = try fixture.user("alice", devices: ["tok-a"])
        let ids = try fixture.notifications(2, user: alice, channels: ["phone"])
        _ = try await fixture.service().run()
        #expect(fake.messages.map(\.push.badge) == [2, 2])
        _ = try fixture.database.setNotificationState(userID: alice, .ids([ids[0]]), to: .read, deviceID: nil, now: Date())
        try fixture.notifications(1, user: alice, channels: ["phone"])
        _ = try await fixture.service().run()
        #expect(fake.messages.last?.push.badge == 2)  // one read, one new
        await fake.stop()
    }
}
