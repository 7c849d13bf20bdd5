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
