import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    /// Issue 18: a trailing rule's running peak (or low) is stored state, kept exactly across
    /// evaluate runs; the seeks find the alert when a price moves its trail or reaches its
    /// level, and a price in between changes nothing.
    @Test(arguments: StoreContractTests.backends)
    func aTrailingAlertsPeakIsKeptAcrossTicksAndItFiresAtExactlyItsPercent(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("TSLA", 100, at: -60)], fetchedAt: at(-60))
            let ids = try store.addAlerts(
                [spec("TSLA", .trailingFall(percent: 5), user: "alice"), spec("TSLA", .trailingRise(percent: 10), user: "alice")],
                limitPerUser: nil, now: at(-59)
            ).compactMap(\.id)
            let (fall, rise) = (ids[0], ids[1])
            #expect(try store.alert(id: fall, ownerID: nil).trailingFrom == nil)

            // Tick 1: the new alerts judge the newest quote; their trail starts there.
            #expect(try store.evaluate(now: at(0), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.alert(id: fall, ownerID: nil).trailingFrom == 100)
            #expect(try store.alert(id: rise, ownerID: nil).trailingFrom == 100)

            // Tick 2: the peak follows the price up; the low does not move; a rise of
            // exactly 10% from the low fires.
            _ = try store.addQuotes([quote("TSLA", 110, at: 60), quote("TSLA", 120, at: 120)], fetchedAt: at(120))
            let second = try store.evaluate(now: at(121), maxAgeSeconds: 3600, prefilter: true).notifications
            #expect(second.map(\.alertId) == [rise])
            #expect(second.map(\.message) == ["TSLA rose 10.0% from its low 100.00 to 110.00"])
            #expect(try store.alert(id: fall, ownerID: nil).trailingFrom == 120)
            #expect(try store.alert(id: rise, ownerID: nil).trailingFrom == 100)

            // A price between the fall's level (114) and its peak changes nothing.
            _ = try store.addQuotes([quote("TSLA", 115, at: 180)], fetchedAt: at(180))
            #expect(try store.evaluate(now: at(181), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.alert(id: fall, ownerID: nil).trailingFrom == 120)
            #expect(try store.alert(id: fall, ownerID: nil).state == .armed)

            // Tick 3: exactly 5% below the peak fires, once; the rise stays firing (no
            // price went back under its level, 110).
            _ = try store.addQuotes([quote("TSLA", 114, at: 240)], fetchedAt: at(240))
            let third = try store.evaluate(now: at(241), maxAgeSeconds: 3600, prefilter: true).notifications
            #expect(third.map(\.alertId) == [fall])
            #expect(third.map(\.message) == ["TSLA fell 5.0% from its peak 120.00 to 114.00"])
            #expect(try store.alert(id: fall, ownerID: nil).state == .firing)
            #expect(try store.alert(id: rise, ownerID: nil).state == .firing)
            #expect(try store.evaluate(now: at(242), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.notifications(NotificationQuery()).count == 2)

            // Paused and resumed: re-armed, so the trail starts again at the price it judges.
            _ = try store.changeAlertState(id: fall) { _ in .paused }
            #expect(try store.changeAlertState(id: fall) { _ in .armed }.trailingFrom == nil)
            #expect(try store.evaluate(now: at(243), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.alert(id: fall, ownerID: nil).trailingFrom == 114)
        }
    }

    /// A trail the prices merely move (a new peak, or low, whose level no price reaches) is
    /// written without its rule being judged (SQLite's `trailMoves`): the next tick fires
    /// from the moved trail, and a price that neither moves it nor reaches it keeps it.
    @Test(arguments: StoreContractTests.backends)
    func aTrailThatMerelyMovesIsKeptAndFiredFrom(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("TSLA", 100, at: -60), quote("NVDA", 100, at: -60)], fetchedAt: at(-60))
            let ids = try store.addAlerts(
                [spec("TSLA", .trailingFall(percent: 5), user: "alice"), spec("NVDA", .trailingRise(percent: 10), user: "alice")],
                limitPerUser: nil, now: at(-59)
            ).compactMap(\.id)
            let (fall, rise) = (ids[0], ids[1])
            #expect(try store.evaluate(now: at(0), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)

            _ = try store.addQuotes([quote("TSLA", 104, at: 60), quote("NVDA", 95, at: 60)], fetchedAt: at(60))
            #expect(try store.evaluate(now: at(61), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.alert(id: fall, ownerID: nil).trailingFrom == 104)
            #expect(try store.alert(id: rise, ownerID: nil).trailingFrom == 95)

            _ = try store.addQuotes(
                [quote("TSLA", 101, at: 120), quote("TSLA", 102, at: 150), quote("NVDA", 99, at: 120)], fetchedAt: at(150))
            #expect(try store.evaluate(now: at(151), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.alert(id: fall, ownerID: nil).trailingFrom == 104)
            #expect(try store.alert(id: rise, ownerID: nil).trailingFrom == 95)

            _ = try store.addQuotes([quote("TSLA", 98.8, at: 180), quote("NVDA", 104.5, at: 180)], fetchedAt: at(180))
            let fired = try store.evaluate(now: at(181), maxAgeSeconds: 3600, prefilter: true).notifications
            #expect(Set(fired.map(\.alertId)) == [fall, rise])
            #expect(Set(fired.map(\.message)) == ["TSLA fell 5.0% from its peak 104.00 to 98.80", "NVDA rose 10.0% from its low 95.00 to 104.50"])
        }
    }

    /// Stored and read back as the kind and percent they were given, on both backends.
    @Test(arguments: StoreContractTests.backends)
    func aTrailingRuleIsStoredWithItsKindAndPercent(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let added = try store.addAlerts([spec("VOD.L", .trailingRise(percent: 2.5), user: "alice")], limitPerUser: nil, now: now)
            #expect(added.first?.condition == AlertJSON.ConditionJSON(.trailingRise(percent: 2.5)))
            #expect(try store.alerts(AlertQuery()).first?.condition.kind == .trailingRise)
        }
    }
}
