import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    /// Many firings in one run (SQLite writes them 100 rows to a statement): every one a
    /// notification with a delivery per channel, ids drawn in the order of the alerts, and
    /// the report's ids the stored ones.
    @Test(arguments: StoreContractTests.backends)
    func manyFiringsAreWrittenInOrderWithTheirDeliveries(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("AAPL", 100, at: -120), quote("MSFT", 100, at: -120)], fetchedAt: at(-120))
            let specs = (0..<250).map { index in
                var alert = spec(index % 2 == 0 ? "AAPL" : "MSFT", .above(100.5), user: "alice", channels: index % 3 == 0 ? ["stdout", "fcm"] : ["stdout"])
                alert.trigger = .every
                return alert
            }
            let alerts = try store.addAlerts(specs, limitPerUser: nil, now: at(-110))
            _ = try store.evaluate(now: at(-100), maxAgeSeconds: 3600, prefilter: true)
            _ = try store.addQuotes([quote("AAPL", 101, at: -60), quote("MSFT", 102, at: -60)], fetchedAt: at(-60))
            let report = try store.evaluate(now: at(-60), maxAgeSeconds: 3600, prefilter: true)
            #expect(report.notifications.count == 250)
            #expect(report.notifications.map(\.id) == report.notifications.map(\.id).sorted())
            let byAlert = report.notifications.sorted { $0.alertId < $1.alertId }
            #expect(byAlert.map(\.alertId) == alerts.compactMap(\.id))
            #expect(byAlert.map(\.id) == report.notifications.map(\.id))
            let stored = try store.notifications(NotificationQuery(limit: 1000))
            #expect(Set(stored.map(\.id)) == Set(report.notifications.map(\.id)))
            for notification in stored {
                let alert = try #require(alerts.first { $0.id == notification.alertId })
                #expect(notification.deliveries.map(\.channel).sorted() == (alert.channels ?? []).sorted())
                #expect(notification.deliveries.allSatisfy { $0.status == .pending && $0.notificationId == notification.id })
                #expect(notification.price == (alert.symbol == "AAPL" ? 101 : 102))
            }
            // The same quotes judged again: nothing new.
            #expect(try store.evaluate(now: at(-50), maxAgeSeconds: 3600, prefilter: false).notifications.isEmpty)
            #expect(try store.notifications(NotificationQuery(limit: 1000)).count == 250)
        }
    }
}
