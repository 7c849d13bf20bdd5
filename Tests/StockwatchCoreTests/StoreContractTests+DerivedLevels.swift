import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    /// A level that re-arms at its level shows the state its symbol's last judged price
    /// says (SQLite's migration v19, PostgreSQL's v13: evaluate no longer writes it), to
    /// one alert, the list and its state filter alike; one with a margin is written as before.
    @Test(arguments: StoreContractTests.backends)
    func aLevelShowsTheStateItsSymbolsLastJudgedPriceSays(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("AAPL", 95, at: -600)], fetchedAt: at(-600))
            var withMargin = spec("AAPL", .above(100), user: "alice")
            withMargin.rearmMarginPercent = 1
            let added = try store.addAlerts([spec("AAPL", .above(100), user: "alice"), withMargin], limitPerUser: nil, now: at(-590))
            let (derived, margin) = (try #require(added[0].id), try #require(added[1].id))
            func run(_ price: Double?, at seconds: Int, maxAge: Int64 = 3600) throws -> [Int64] {
                if let price { _ = try store.addQuotes([quote("AAPL", price, at: seconds)], fetchedAt: at(seconds)) }
                return try store.evaluate(now: at(seconds + 10), maxAgeSeconds: maxAge, prefilter: true).notifications.map(\.alertId)
            }
            func shown(_ id: Int64) throws -> AlertState? { try store.alert(id: id, ownerID: nil).state }
            #expect(try run(nil, at: -580).isEmpty)
            #expect(try run(101, at: -500) == [derived, margin])
            #expect(try shown(derived) == .firing)
            #expect(try store.alerts(AlertQuery(state: .firing)).map(\.id) == [derived, margin])
            #expect(try store.alerts(AlertQuery(state: .armed)).isEmpty)
            #expect(try run(102, at: -400).isEmpty)
            // Back under the level: the derived one re-arms; the margin wants under 99.
            #expect(try run(99.5, at: -300).isEmpty)
            #expect(try shown(derived) == .armed)
            #expect(try shown(margin) == .firing)
            #expect(try store.alerts(AlertQuery(state: .armed)).map(\.id) == [derived])
            #expect(try run(100, at: -200) == [derived])
            // A quote too old to judge moves the watermark, not the state.
            #expect(try run(90, at: -150, maxAge: 5).isEmpty)
            #expect(try shown(derived) == .firing)
            // Paused while firing, then resumed: armed until it judges its first current
            // quote, which fires it again.
            #expect(try store.changeAlertState(id: derived) { _ in .paused }.state == .paused)
            #expect(try store.changeAlertState(id: derived) { _ in .armed }.state == .armed)
            #expect(try shown(derived) == .armed)
            #expect(try run(100.5, at: -100) == [derived])
            #expect(try shown(derived) == .firing)
            #expect(try shown(margin) == .firing)
        }
    }

    /// An armed crossing is sought only between its symbol's previous prices and the new
    /// ones (`Evaluation.levelBounds`): the previous price a crossing starts from is the
    /// quote before the new one even when that quote was too old to judge, below the last
    /// price judged. It fires from there, and one already under every previous price is
    /// not crossed.
    @Test(arguments: StoreContractTests.backends)
    func aCrossingFiresFromAQuoteTooOldToJudge(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("AAPL", 100, at: -900)], fetchedAt: at(-900))
            var specs = [spec("AAPL", .crossesAbove(98), user: "alice"), spec("AAPL", .crossesAbove(96), user: "alice")]
            for index in specs.indices { specs[index].trigger = .every }
            let added = try store.addAlerts(specs, limitPerUser: nil, now: at(-890))
            let crossing = try #require(added[0].id)
            func run(_ price: Double, at seconds: Int, maxAge: Int64 = 3600) throws -> [Int64] {
                _ = try store.addQuotes([quote("AAPL", price, at: seconds)], fetchedAt: at(seconds))
                return try store.evaluate(now: at(seconds + 10), maxAgeSeconds: maxAge, prefilter: true).notifications.map(\.alertId)
            }
            #expect(try run(100.5, at: -800).isEmpty)
            // Too old to judge when evaluate comes: the watermark moves, the judged price stays 100.5.
            #expect(try run(97, at: -700, maxAge: 5).isEmpty)
            #expect(try run(99, at: -600) == [crossing])
            #expect(try run(99.5, at: -500).isEmpty)
        }
    }
}
