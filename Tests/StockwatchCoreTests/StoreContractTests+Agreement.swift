import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    /// Every backend's evaluate, with its seeks and its derived level states, agrees round
    /// by round with SQLite's evaluate that reads every alert (no seeks): the same
    /// notifications and the same states shown, over a random market of levels and
    /// crossings of every trigger, with pauses, resumes and quotes too old to judge.
    @Test(arguments: StoreContractTests.backends)
    func evaluateAgreesWithAFullReadOverARandomMarket(_ backend: Backend) async throws {
        let scratch = NSTemporaryDirectory() + "stockwatch-agreement-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let reference = try openDataStore(at: scratch + "/reference.db")
        try await withStore(backend) { store in
            var random = EvaluatePrefilterTests.Generator(state: 7)
            let symbols = ["AAA", "BBB", "CCC"]
            var specs: [AlertSpec] = []
            for index in 0..<120 {
                let level = (Double.random(in: 94...106, using: &random) * 100).rounded() / 100
                let kinds: [Condition] = [.above(level), .below(level), .crossesAbove(level), .crossesBelow(level)]
                var alert = spec(symbols[index % 3], kinds[Int.random(in: 0..<4, using: &random)], user: "alice")
                alert.trigger = [.once, .rearm, .rearm, .rearm, .every].randomElement(using: &random)!
                if alert.trigger == .rearm, Int.random(in: 0..<4, using: &random) == 0 { alert.rearmMarginPercent = 0.5 }
                if Int.random(in: 0..<5, using: &random) == 0 { alert.cooldownSeconds = 300 }
                specs.append(alert)
            }
            for target in [store, reference] { _ = try target.addUser(name: "alice", tokenHash: hash(1), now: now) }
            var prices = Dictionary(uniqueKeysWithValues: symbols.map { ($0, 100.0) })
            var seconds = -100_000
            var derivedFiring = 0
            for round in 0..<40 {
                var quotes: [QuoteJSON] = []
                for symbol in symbols where Int.random(in: 0..<4, using: &random) > 0 {
                    for _ in 0..<Int.random(in: 1...3, using: &random) {
                        seconds += 60
                        prices[symbol]! *= 1 + Double.random(in: -0.02...0.02, using: &random)
                        quotes.append(quote(symbol, (prices[symbol]! * 100).rounded() / 100, at: seconds))
                    }
                }
                // Now and then evaluate runs late: the quotes are too old to judge.
                let late = Int.random(in: 0..<8, using: &random) == 0
                let evaluatedAt = at(seconds + (late ? 7200 : 30))
                let arriving = round < 6 ? Array(specs[(round * 20)..<(round * 20 + 20)]) : []
                let toggled = round < 1 ? [] : (0..<3).map { _ in (Int64.random(in: 1...Int64(min(round, 6) * 20), using: &random), Bool.random(using: &random)) }
                var outcomes: [[String]] = []
                for (index, target) in [store, reference].enumerated() {
                    if !quotes.isEmpty { _ = try target.addQuotes(quotes, fetchedAt: at(seconds)) }
                    if !arriving.isEmpty { _ = try target.addAlerts(arriving, limitPerUser: nil, now: at(seconds)) }
                    for (id, pause) in toggled {
                        _ = try target.changeAlertState(id: id) { alert in
                            if pause { return alert.state == .armed || alert.state == .firing ? .paused : nil }
                            return alert.state == .paused ? .armed : nil
                        }
                    }
                    let report = try target.evaluate(now: evaluatedAt, maxAgeSeconds: 3600, prefilter: index == 0)
                    let states = try target.alerts(AlertQuery()).map { "\($0.id ?? 0) \($0.state?.rawValue ?? "?")" }
                    outcomes.append(report.notifications.map { "\($0.alertId) \($0.price) \($0.observedAt)" } + states)
                    if index == 1 { derivedFiring += states.filter { $0.hasSuffix("firing") }.count }
                }
                #expect(outcomes[0] == outcomes[1], "round \(round): \(Set(outcomes[0]).symmetricDifference(outcomes[1]).sorted())")
                if outcomes[0] != outcomes[1] { return }
            }
            #expect(derivedFiring > 20, "the market must leave alerts firing")
        }
    }
}
