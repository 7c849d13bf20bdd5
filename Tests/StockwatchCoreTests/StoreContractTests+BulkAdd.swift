import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    /// `alert import`: alerts added in one call, more than one of SQLite's 100-row
    /// statements, each come back with its own id, in the order given, and list the same.
    @Test(arguments: StoreContractTests.backends)
    func manyAlertsAddedAtOnceEachComeBackWithTheirOwnID(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("S001", 10, at: -60)], fetchedAt: at(-60))
            let specs = (0..<250).map { i in
                var added = spec(String(format: "S%03d", i % 7), .above(Double(i + 1)), user: i % 3 == 0 ? "alice" : nil)
                added.note = i % 5 == 0 ? "note \(i)" : nil
                return added
            }
            let added = try store.addAlerts(specs, limitPerUser: nil, now: now)
            #expect(added.map(\.symbol) == specs.map(\.symbol))
            #expect(added.map(\.condition.value) == specs.map(\.condition.value))
            #expect(added.map(\.note) == specs.map(\.note))
            #expect(added.map(\.user) == specs.map { $0.user ?? "default" as String? })
            let ids = added.compactMap(\.id)
            #expect(ids.count == specs.count && ids == ids.sorted() && Set(ids).count == ids.count)
            #expect(try store.alerts(AlertQuery()) == added)
            #expect(try store.alerts(AlertQuery(user: "alice", symbol: "S003", afterID: ids[3], limit: 2)) == [added[24], added[45]])
        }
    }
}
