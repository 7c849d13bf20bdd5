import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    /// A snoozed alert is judged by evaluate (its state moves) but writes no notification
    /// for quotes observed before the snooze ends; after it, it notifies from the price
    /// it is at. The snooze is in the alert's JSON until ended.
    @Test(arguments: StoreContractTests.backends)
    func aSnoozedAlertIsJudgedButNotifiesOnlyAfterItsEnd(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let ids = try store.addAlerts(
                [spec("AAPL", .above(200), user: "alice"), spec("AAPL", .crossesAbove(200), user: "alice")], limitPerUser: nil, now: at(-60)
            ).compactMap(\.id)
            _ = try store.addQuotes([quote("AAPL", 190, at: 0)], fetchedAt: at(0))
            #expect(try store.evaluate(now: at(0), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)

            for id in ids { #expect(try store.snoozeAlert(id: id, until: at(600)).snoozedUntil == at(600)) }
            #expect(try store.alert(id: ids[0], ownerID: nil).snoozedUntil == at(600))
            #expect(throws: StockwatchError.notFound(kind: "alert", id: "999999")) { try store.snoozeAlert(id: 999_999, until: at(600)) }

            // Both fire during the snooze: judged (the level alert is firing now), not notified.
            _ = try store.addQuotes([quote("AAPL", 210, at: 60)], fetchedAt: at(60))
            #expect(try store.evaluate(now: at(60), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.alerts(AlertQuery()).map(\.state) == [.firing, .firing])
            #expect(try store.notifications(NotificationQuery()).isEmpty)

            // After the snooze: the level alert waits to re-arm (the price never went back),
            // the crossing alert notifies the next crossing, not the forgotten one.
            _ = try store.addQuotes([quote("AAPL", 195, at: 700), quote("AAPL", 205, at: 760)], fetchedAt: at(760))
            let after = try store.evaluate(now: at(760), maxAgeSeconds: 3600, prefilter: true).notifications
            #expect(Set(after.compactMap(\.alertId)) == Set(ids))  // 195 re-armed the level alert; 205 fired both
            #expect(try store.notifications(NotificationQuery()).count == 2)

            // Ended early: nil in the JSON, and the next firing notifies.
            #expect(try store.snoozeAlert(id: ids[0], until: nil).snoozedUntil == nil)
            #expect(try store.alert(id: ids[0], ownerID: nil).snoozedUntil == nil)
        }
    }
}

extension StoreContractTests {
    /// A user's clock: time zone and quiet hours are kept and listed; a held claim goes
    /// back to pending without counting an attempt, due at the end; changing the settings
    /// makes what was held due at once.
    @Test(arguments: StoreContractTests.backends)
    func quietHoursHoldClaimsAndAChangeReleasesThem(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            #expect(alice.timezone == "UTC" && alice.quietHours == nil)
            let saved = try store.saveUserSettings(userID: alice.id, timezone: "Europe/Warsaw", quietHours: "22:00-07:00", now: now)
            #expect(saved.timezone == "Europe/Warsaw" && saved.quietHours == "22:00-07:00" && saved.name == "alice")
            #expect(try store.user(id: alice.id).quietHours == "22:00-07:00")
            #expect(try store.users().map(\.timezone) == ["Europe/Warsaw", "UTC"])
            #expect(try store.usersWithQuietHours().map(\.name) == ["alice"])
            #expect(throws: StockwatchError.notFound(kind: "user", id: "999999")) { try store.user(id: 999_999) }

            _ = try store.registerDevice(user: "alice", fcmToken: "tok-1", label: nil, limitPerUser: nil, now: now)
            _ = try store.addAlerts([spec("AAPL", .above(100), user: "alice", channels: ["phone"])], limitPerUser: nil, now: at(-60))
            _ = try store.addQuotes([quote("AAPL", 150, at: 0)], fetchedAt: now)
            _ = try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true)
            let claim = try await store.claimDeliveries(channels: ["phone"], fanOut: ["phone"], limit: 10, cutoff: now, leaseUntil: at(60), now: now)
            let job = try #require(claim.jobs.first)
            #expect(try await store.holdClaims([job.deliveryID: job.attempt], until: at(3600), reason: "held for quiet hours", now: at(1)) == 1)
            #expect(try await store.holdClaims([job.deliveryID: job.attempt], until: at(3600), reason: "again", now: at(1)) == 0)  // no longer claimed
            let held = try #require(try store.notifications(NotificationQuery(userID: alice.id)).first?.deliveries.first)
            #expect(held.status == .pending && held.attempts == 0 && held.error == "held for quiet hours")
            #expect(try store.nextDeliveryDue() == at(3600))
            let early = try await store.claimDeliveries(channels: ["phone"], fanOut: ["phone"], limit: 10, cutoff: at(10), leaseUntil: at(70), now: at(10))
            #expect(early.jobs.isEmpty)

            // The user ends their quiet hours: what was held is due now.
            _ = try store.saveUserSettings(userID: alice.id, timezone: "Europe/Warsaw", quietHours: nil, now: at(20))
            #expect(try store.usersWithQuietHours().isEmpty)
            let released = try await store.claimDeliveries(channels: ["phone"], fanOut: ["phone"], limit: 10, cutoff: at(20), leaseUntil: at(80), now: at(20))
            #expect(released.jobs.map(\.deliveryID) == [job.deliveryID])
            #expect(released.jobs.first?.attempt == 1)
            #expect(released.jobs.first?.heldForQuietHours == true && job.heldForQuietHours == false)
            // The badge's count: alice's one notification is unread; bob has none.
            #expect(try await store.unreadCounts(users: ["alice", "bob"]) == ["alice": 1, "bob": 0])
        }
    }
}

extension StoreContractTests {
    /// A schedule is read on its user's clock: a firing outside it is judged and
    /// forgotten, one inside notifies; the alert's JSON has it.
    @Test(arguments: StoreContractTests.backends)
    func aScheduledAlertNotifiesOnlyWithinItsHoursOnItsUsersClock(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.saveUserSettings(userID: alice.id, timezone: "America/New_York", quietHours: nil, now: now)
            var scheduled = spec("AAPL", .above(200), user: "alice")
            scheduled.trigger = .every
            // `now` is 2026-05-28T20:26:40Z, a Thursday: 16:26 in New York (EDT).
            scheduled.schedule = "thu 16:30-17:00"
            let added = try store.addAlerts([scheduled], limitPerUser: nil, now: at(-60))
            #expect(added.first?.schedule == "thu 16:30-17:00")
            #expect(try store.alerts(AlertQuery()).first?.schedule == "thu 16:30-17:00")
            _ = try store.addQuotes([quote("AAPL", 210, at: 0)], fetchedAt: at(0))  // 16:26: outside
            #expect(try store.evaluate(now: at(0), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            _ = try store.addQuotes([quote("AAPL", 211, at: 300)], fetchedAt: at(300))  // 16:31: inside
            #expect(try store.evaluate(now: at(300), maxAgeSeconds: 3600, prefilter: true).notifications.count == 1)
        }
    }
}
