import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    /// Symbols judged at different times each judge their new quotes after their own
    /// watermark, with the quote there as the previous price: SQLite loads a symbol quoted
    /// in the last minutes by one scan by time, and one quoted long before by a seek of its
    /// own (`Evaluation.sharedQuoteStart`). A crossing fires only with its previous price.
    @Test(arguments: StoreContractTests.backends)
    func symbolsJudgedAtDifferentTimesEachJudgeFromTheirOwnWatermark(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("SLOW", 100, at: -3000), quote("FAST", 100, at: -3000)], fetchedAt: at(-3000))
            let alerts = try store.addAlerts(
                [spec("SLOW", .crossesAbove(101), user: "alice"), spec("FAST", .crossesAbove(101), user: "alice")], limitPerUser: nil, now: at(-2990))
            #expect(try store.evaluate(now: at(-2980), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            // FAST moves on (its watermark 4 minutes ago); SLOW's stays 50 minutes back.
            _ = try store.addQuotes([quote("FAST", 99, at: -600), quote("FAST", 100.5, at: -240)], fetchedAt: at(-240))
            #expect(try store.evaluate(now: at(-230), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)

            _ = try store.addQuotes([quote("SLOW", 102, at: -60), quote("FAST", 102, at: -60)], fetchedAt: at(-60))
            let report = try store.evaluate(now: at(-50), maxAgeSeconds: 3600, prefilter: true)
            #expect(report.notifications.map(\.alertId).sorted() == alerts.compactMap(\.id).sorted())
            #expect(report.notifications.allSatisfy { $0.price == 102 })
            #expect(report.notifications.map(\.message).sorted() == ["FAST crossed above 101.00 at 102.00", "SLOW crossed above 101.00 at 102.00"])

            // Back under and over again: each crosses once more, from its new watermark.
            _ = try store.addQuotes([quote("SLOW", 100, at: -40), quote("FAST", 100, at: -40)], fetchedAt: at(-40))
            #expect(try store.evaluate(now: at(-35), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            _ = try store.addQuotes([quote("SLOW", 101.5, at: -20)], fetchedAt: at(-20))
            let again = try store.evaluate(now: at(-10), maxAgeSeconds: 3600, prefilter: true)
            #expect(again.notifications.map(\.alertId) == [alerts[0].id])
            #expect(try store.evaluate(now: at(-5), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.notifications(NotificationQuery()).count == 3)
        }
    }
}
