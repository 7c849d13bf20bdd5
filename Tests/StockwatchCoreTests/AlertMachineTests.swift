import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer

/// Every condition and trigger at and around its boundaries. A series is a run of quotes
/// one minute apart; each quote's previous price is the one before it (none for the first).
/// Expected outcomes, one character per quote: N notify, - quiet, S suppressed by the
/// cooldown or a snooze, I insufficient history.
@Suite struct AlertMachineTests {
    struct Series: CustomTestStringConvertible, Sendable {
        let name: String
        let machine: AlertMachine
        let prices: [Double]
        /// Rise and fall: the reference price for each quote (nil: no quote that old).
        var references: [Double?]? = nil
        let expected: String
        let finalState: AlertState

        var testDescription: String { name }
    }

    static let cases: [Series] = [
        // above: price >= X
        Series(name: "above: exactly at the level fires, re-arms below it, fires again",
            machine: AlertMachine(condition: .above(200)), prices: [199.99, 200, 200.01, 199.99, 200], expected: "-N--N", finalState: .firing),
        Series(name: "above: already past on the first quote fires at once",
            machine: AlertMachine(condition: .above(200)), prices: [250], expected: "N", finalState: .firing),
        Series(name: "above: stays silent while it holds",
            machine: AlertMachine(condition: .above(200)), prices: [201, 202, 300, 200], expected: "N---", finalState: .firing),
        Series(name: "above once: fires once, never again",
            machine: AlertMachine(condition: .above(200), trigger: .once), prices: [199, 200, 250, 199, 201], expected: "-N---", finalState: .fired),
        Series(name: "above every: every quote where it holds",
            machine: AlertMachine(condition: .above(200), trigger: .every), prices: [200, 199.99, 201, 202], expected: "N-NN", finalState: .armed),
        // below: price <= X
        Series(name: "below: exactly at the level fires, re-arms above it",
            machine: AlertMachine(condition: .below(100)), prices: [100.01, 100, 99, 100.01, 100], expected: "-N--N", finalState: .firing),
        // crosses: previous < X and this >= X
        Series(name: "crosses above: the first quote never crosses",
            machine: AlertMachine(condition: .crossesAbove(200)), prices: [250, 260], expected: "--", finalState: .armed),
        Series(name: "crosses above: from below to exactly the level",
            machine: AlertMachine(condition: .crossesAbove(200)), prices: [200, 201, 199.99, 200], expected: "---N", finalState: .firing),
        Series(name: "crosses above: back and forth fires each crossing",
            machine: AlertMachine(condition: .crossesAbove(200)), prices: [199, 201, 199, 201, 202], expected: "-N-N-", finalState: .firing),
        Series(name: "crosses below: previous > X and this <= X",
            machine: AlertMachine(condition: .crossesBelow(100)), prices: [101, 100, 100.5, 99.9, 100], expected: "-N-N-", finalState: .firing),
        Series(name: "crosses below: from exactly the level is no crossing",
            machine: AlertMachine(condition: .crossesBelow(100)), prices: [100, 99], expected: "--", finalState: .armed),
        Series(name: "crosses above every: each crossing",
            machine: AlertMachine(condition: .crossesAbove(10), trigger: .every), prices: [9, 10, 11, 9, 10], expected: "-N--N", finalState: .armed),
        // rearm margin: hysteresis
        Series(name: "margin 1%: flapping around the level fires once",
            machine: AlertMachine(condition: .above(200), rearmMarginPercent: 1), prices: [200, 199, 198.5, 200, 199.5, 201], expected: "N-----", finalState: .firing),
        Series(name: "margin 1%: exactly 1% back does not re-arm, below it does",
            machine: AlertMachine(condition: .above(200), rearmMarginPercent: 1), prices: [200, 198, 200, 197.99, 200], expected: "N---N", finalState: .firing),
        Series(name: "margin 2% on below",
            machine: AlertMachine(condition: .below(100), rearmMarginPercent: 2), prices: [100, 101, 102, 99, 102.01, 100], expected: "N----N", finalState: .firing),
        Series(name: "margin on crosses above: no new crossing until re-armed",
            machine: AlertMachine(condition: .crossesAbove(100), rearmMarginPercent: 5), prices: [99, 100, 99, 100, 94, 100], expected: "-N---N", finalState: .firing),
        // cooldown (quotes are a minute apart)
        Series(name: "cooldown 5m on every: suppressed until 5 minutes have passed",
            machine: AlertMachine(condition: .above(200), trigger: .every, cooldownSeconds: 300), prices: Array(repeating: 201, count: 7), expected: "NSSSSNS", finalState: .armed),
        Series(name: "cooldown on rearm: a suppressed firing still moves the state",
            machine: AlertMachine(condition: .above(200), cooldownSeconds: 180), prices: [201, 199, 201, 201, 201, 199, 201], expected: "N-S---N", finalState: .firing),
        Series(name: "cooldown counts from the last sent notification, not a suppressed one",
            machine: AlertMachine(condition: .above(200), trigger: .every, cooldownSeconds: 120), prices: [201, 201, 201, 201, 201], expected: "NSNSN", finalState: .armed),
        // snooze until minute 3 (a quote observed exactly then is past it): judged, forgotten
        Series(name: "snooze on rearm: a firing during it moves the state and is forgotten",
            machine: AlertMachine(condition: .above(200), snoozedUntil: 180_000), prices: [201, 202, 203, 204, 199, 201], expected: "S----N", finalState: .firing),
        Series(name: "snooze ends at its instant: the quote observed exactly then notifies",
            machine: AlertMachine(condition: .above(200), trigger: .every, snoozedUntil: 180_000), prices: [201, 201, 201, 201], expected: "SSSN", finalState: .armed),
        Series(name: "snooze on a crossing: crossed and forgotten, the next crossing notifies",
            machine: AlertMachine(condition: .crossesAbove(200), snoozedUntil: 120_000), prices: [199, 201, 199, 201], expected: "-S-N", finalState: .firing),
        Series(name: "snooze on once: not used up, fires after the snooze if it still holds",
            machine: AlertMachine(condition: .above(200), trigger: .once, snoozedUntil: 120_000), prices: [201, 201, 201, 201], expected: "SSN-", finalState: .fired),
        // a schedule (the series starts Thursday 1970-01-01 00:00 UTC): outside it, as snoozed
        Series(name: "schedule: only within its hours, judged outside them",
            machine: AlertMachine(condition: .above(200), trigger: .every, schedule: try! WeeklySchedule.parse("thu 00:02-00:04", option: "s"), zone: .gmt),
            prices: [201, 201, 201, 201, 201, 201], expected: "SSNNSS", finalState: .armed),
        Series(name: "schedule on another day: never",
            machine: AlertMachine(condition: .above(200), trigger: .every, schedule: try! WeeklySchedule.parse("mon-wed,fri-sun 00:00-23:59", option: "s"), zone: .gmt),
            prices: [201, 201], expected: "SS", finalState: .armed),
        Series(name: "schedule on once: waits for its hours",
            machine: AlertMachine(condition: .above(200), trigger: .once, schedule: try! WeeklySchedule.parse("thu 00:02-00:04", option: "s"), zone: .gmt),
            prices: [201, 201, 201, 201], expected: "SSN-", finalState: .fired),
        // rise and fall: against the last quote at or before (time - window)
        Series(name: "rise 5%: exactly 5% fires, below it does not",
            machine: AlertMachine(condition: .rise(percent: 5, windowSeconds: 3600)), prices: [104.99, 105, 106, 104.99, 105],
            references: [100, 100, 100, 100, 100], expected: "-N--N", finalState: .firing),
        Series(name: "rise: no quote as old as the window is insufficient history",
            machine: AlertMachine(condition: .rise(percent: 5, windowSeconds: 3600)), prices: [200, 210],
            references: [nil, 200], expected: "IN", finalState: .firing),
        Series(name: "fall 5%: exactly 5% fires",
            machine: AlertMachine(condition: .fall(percent: 5, windowSeconds: 86_400)), prices: [95.01, 95, 94],
            references: [100, 100, 100], expected: "-N-", finalState: .firing),
        Series(name: "fall once",
            machine: AlertMachine(condition: .fall(percent: 10, windowSeconds: 60), trigger: .once), prices: [90, 80],
            references: [100, 90], expected: "N-", finalState: .fired),
        // since close and new highs and lows (issue 18): the reference is the previous
        // close, or the window's highest (lowest) daily close
        Series(name: "rise 3% since close: exactly 3% fires; a new day's close moves the level",
            machine: AlertMachine(condition: .riseSinceClose(percent: 3)), prices: [102.99, 103, 102, 105, 105.05],
            references: [100, 100, 100, 101, 101], expected: "-N-N-", finalState: .firing),
        Series(name: "fall since close with no close stored: insufficient history",
            machine: AlertMachine(condition: .fallSinceClose(percent: 3)), prices: [90, 97], references: [nil, 100], expected: "IN", finalState: .firing),
        Series(name: "new high: equal to the old high does not fire, above it does; back under re-arms",
            machine: AlertMachine(condition: .newHigh(windowSeconds: 20 * 86_400)), prices: [120, 120.01, 121, 119.99, 120.5],
            references: [120, 120, 120, 120, 120], expected: "-N--N", finalState: .firing),
        Series(name: "new low with a re-arm margin: back above the low by the margin first",
            machine: AlertMachine(condition: .newLow(windowSeconds: 364 * 86_400), rearmMarginPercent: 1), prices: [89.99, 90.5, 89, 91, 89.5],
            references: [90, 90, 90, 90, 90], expected: "N---N", finalState: .firing),
        Series(name: "new high without history reaching back over the window: insufficient history",
            machine: AlertMachine(condition: .newHigh(windowSeconds: 364 * 86_400)), prices: [500], references: [nil], expected: "I", finalState: .armed),
        // trailing (issue 18): from the highest (lowest) price since armed or re-armed
        Series(name: "trailing fall 5%: the peak follows the price up; exactly 5% below it fires",
            machine: AlertMachine(condition: .trailingFall(percent: 5)), prices: [100, 200, 190.01, 190], expected: "---N", finalState: .firing),
        Series(name: "trailing fall: a price that is itself the new peak never fires",
            machine: AlertMachine(condition: .trailingFall(percent: 5)), prices: [100, 101, 102, 103], expected: "----", finalState: .armed),
        Series(name: "trailing fall rearm: back above the level re-arms, and the trail restarts from there",
            machine: AlertMachine(condition: .trailingFall(percent: 5)), prices: [200, 190, 195, 185.25], expected: "-N-N", finalState: .firing),
        Series(name: "trailing fall rearm with a margin: 1% back above the level is not enough",
            machine: AlertMachine(condition: .trailingFall(percent: 5), rearmMarginPercent: 2), prices: [200, 190, 193.8, 190, 193.81, 184.1195],
            expected: "-N---N", finalState: .firing),
        Series(name: "trailing fall once",
            machine: AlertMachine(condition: .trailingFall(percent: 5), trigger: .once), prices: [100, 95, 90], expected: "-N-", finalState: .fired),
        Series(name: "trailing fall every: every quote at or below the level",
            machine: AlertMachine(condition: .trailingFall(percent: 5), trigger: .every), prices: [100, 95, 94, 96], expected: "-NN-", finalState: .armed),
        Series(name: "trailing rise 10% from the low; just under the level re-arms from it",
            machine: AlertMachine(condition: .trailingRise(percent: 10)), prices: [100, 90, 98.99, 99, 98.99], expected: "---N-", finalState: .armed),
        Series(name: "trailing rise with a cooldown: the second firing is suppressed",
            machine: AlertMachine(condition: .trailingRise(percent: 10), trigger: .every, cooldownSeconds: 3600), prices: [100, 110, 111], expected: "-NS",
            finalState: .armed),
        // states evaluate does not judge
        Series(name: "a fired alert stays silent",
            machine: AlertMachine(condition: .above(1), state: .fired), prices: [5], expected: "-", finalState: .fired),
    ]

    @Test(arguments: cases)
    func judgesSeries(_ series: Series) {
        var machine = series.machine
        var outcomes = ""
        for (index, price) in series.prices.enumerated() {
            let outcome = machine.judge(
                symbol: "X", price: price, time: Int64(index) * 60_000, previous: index > 0 ? series.prices[index - 1] : nil,
                reference: series.references?[index] ?? nil)
            switch outcome {
            case .quiet: outcomes += "-"
            case .notify: outcomes += "N"
            case .suppressed: outcomes += "S"
            case .insufficientHistory: outcomes += "I"
            }
        }
        #expect(outcomes == series.expected)
        #expect(machine.state == series.finalState)
    }

    @Test func messagesNameSymbolLevelAndPrice() {
        #expect(AlertMachine.message(.crossesAbove(200), symbol: "AAPL", price: 201.35, reference: nil) == "AAPL crossed above 200.00 at 201.35")
        #expect(AlertMachine.message(.crossesBelow(1.1), symbol: "EUR/USD", price: 1.0999, reference: nil) == "EUR/USD crossed below 1.10 at 1.0999")
        #expect(AlertMachine.message(.above(200), symbol: "AAPL", price: 200, reference: nil) == "AAPL is at or above 200.00 at 200.00")
        #expect(AlertMachine.message(.below(5), symbol: "VOD.L", price: 4.5, reference: nil) == "VOD.L is at or below 5.00 at 4.50")
        #expect(AlertMachine.message(.fall(percent: 2, windowSeconds: 86_400), symbol: "EUR/USD", price: 1.0412, reference: 1.0636) == "EUR/USD fell 2.1% within 1d to 1.0412")
        #expect(AlertMachine.message(.rise(percent: 5, windowSeconds: 3600), symbol: "AAPL", price: 210, reference: 200) == "AAPL rose 5.0% within 1h to 210.00")
        #expect(AlertMachine.message(.trailingFall(percent: 5), symbol: "TSLA", price: 247, reference: 260) == "TSLA fell 5.0% from its peak 260.00 to 247.00")
        #expect(AlertMachine.message(.trailingRise(percent: 3), symbol: "EUR/USD", price: 1.03, reference: 1) == "EUR/USD rose 3.0% from its low 1.00 to 1.03")
        #expect(AlertMachine.message(.riseSinceClose(percent: 2), symbol: "SAP.DE", price: 102.5, reference: 100) == "SAP.DE rose 2.5% since the previous close 100.00 to 102.50")
        #expect(AlertMachine.message(.fallSinceClose(percent: 2), symbol: "SAP.DE", price: 97, reference: 100) == "SAP.DE fell 3.0% since the previous close 100.00 to 97.00")
        #expect(AlertMachine.message(.newHigh(windowSeconds: 52 * 604_800), symbol: "MSFT", price: 451.2, reference: 450) == "MSFT made a new 52w high at 451.20 (the highest close was 450.00)")
        #expect(AlertMachine.message(.newLow(windowSeconds: 20 * 86_400), symbol: "MSFT", price: 380, reference: 381.5) == "MSFT made a new 20d low at 380.00 (the lowest close was 381.50)")
        // No reference known: the change is from the price itself.
        #expect(AlertMachine.message(.rise(percent: 5, windowSeconds: 5400), symbol: "AAPL", price: 210, reference: nil) == "AAPL rose 0.0% within 1h30m to 210.00")
    }

    /// Prices and level messages are built byte by byte now; the same text as the
    /// Character-view version they replaced, kept here as the reference.
    @Test func pricesAndLevelMessagesAreTheSameTextAsBefore() {
        func reference(_ value: Double) -> String {
            let plain = value.formattedNumber
            guard let dot = plain.firstIndex(of: ".") else { return plain + ".00" }
            return plain.distance(from: dot, to: plain.endIndex) == 2 ? plain + "0" : plain
        }
        let values: [Double] = [0, -0.0, 1, 200, 201.35, 1.1, 1.0999, 4.5, -3.25, 0.1, 1e-05, 1.5e-7, 123456789.5, 1e15, 1e16,
                                2.5e20, -1e300, .greatestFiniteMagnitude, .leastNonzeroMagnitude, 99.999999999, 1.08505, .infinity, .nan]
        for value in values {
            #expect(value.formattedPrice == reference(value), "\(value)")
            var text = "S "
            value.appendPrice(to: &text)
            #expect(text == "S " + reference(value))
        }
        let levels: [(Condition, String)] = [(.above(200), "is at or above"), (.below(0.5), "is at or below"),
                                             (.crossesAbove(1e-05), "crossed above"), (.crossesBelow(101.25), "crossed below")]
        for (condition, words) in levels {
            for symbol in ["AAPL", "EUR/USD", "A-VERY-LONG-SYMBOL.NAME", "ünï"] {
                for price in [1.0, 101.237, 0.5, 2.5e20] {
                    let level = condition.value ?? 0
                    #expect(AlertMachine.message(condition, symbol: symbol, price: price, reference: nil)
                        == "\(symbol) \(words) \(reference(level)) at \(reference(price))")
                }
            }
        }
    }

    /// The running peak is the alert's state: it moves only with a higher price, and starts
    /// again from the price that re-arms it.
    @Test func aTrailingRulesPeakIsKeptAndRestartsWhenReArmed() {
        var machine = AlertMachine(condition: .trailingFall(percent: 5))
        #expect(machine.trailingFrom == nil)
        for (index, price) in [100.0, 120, 115].enumerated() {
            _ = machine.judge(symbol: "X", price: price, time: Int64(index) * 60_000, previous: nil, reference: nil)
        }
        #expect(machine.trailingFrom == 120)
        _ = machine.judge(symbol: "X", price: 114, time: 180_000, previous: 115, reference: nil)
        #expect(machine.state == .firing && machine.trailingFrom == 120)
        _ = machine.judge(symbol: "X", price: 116, time: 240_000, previous: 114, reference: nil)
        #expect(machine.state == .armed && machine.trailingFrom == 116)
    }
}
