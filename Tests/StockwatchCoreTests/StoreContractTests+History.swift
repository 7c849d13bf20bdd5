import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    /// `history --symbol`: a symbol's notifications are those of its alerts and those whose
    /// alert was removed (SQLite finds them through the alerts since v21 dropped the index by
    /// symbol), and no other symbol's.
    @Test(arguments: StoreContractTests.backends)
    func aSymbolsNotificationsIncludeThoseOfRemovedAlerts(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let bob = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            _ = try store.addQuotes([quote("AAPL", 90, at: -300), quote("MSFT", 90, at: -300)], fetchedAt: at(-300))
            let alerts = try store.addAlerts(
                [spec("AAPL", .above(100), user: "alice"), spec("AAPL", .above(101), user: "bob"), spec("MSFT", .above(100), user: "alice")],
                limitPerUser: nil, now: at(-290))
            #expect(try store.evaluate(now: at(-280), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            _ = try store.addQuotes([quote("AAPL", 102, at: -60), quote("MSFT", 102, at: -60)], fetchedAt: at(-60))
            #expect(try store.evaluate(now: at(-50), maxAgeSeconds: 3600, prefilter: true).notifications.count == 3)
            try store.removeAlerts(ids: [try #require(alerts[1].id)], ownerID: nil)

            let aapl = try store.notifications(NotificationQuery(symbol: "AAPL"))
            #expect(aapl.map(\.symbol) == ["AAPL", "AAPL"])
            #expect(Set(aapl.map(\.alertId)) == [alerts[0].id, nil])
            #expect(try store.notifications(NotificationQuery(symbol: "MSFT")).map(\.alertId) == [alerts[2].id])
            #expect(try store.notifications(NotificationQuery(symbol: "AAPL", userID: bob.id)).map(\.alertId) == [nil])
            #expect(try store.notifications(NotificationQuery(symbol: "MSFT", userID: bob.id)).isEmpty)
            #expect(try store.notifications(NotificationQuery(symbol: "AAPL", userID: alice.id)).map(\.alertId) == [alerts[0].id])
            #expect(try store.notifications(NotificationQuery(symbol: "TSLA")).isEmpty)
        }
    }
}
