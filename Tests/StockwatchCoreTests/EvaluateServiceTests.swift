import Foundation
import GRDB
import Testing
@testable import StockwatchCore

@Suite struct EvaluateServiceTests {
    let store: TemporaryStore
    let alerts: AlertService
    let evaluate: EvaluateService
    /// Quotes are placed in minutes relative to this.
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        store = try TemporaryStore()
        var config = Config()
        config.maxAgeSeconds = 3600
        var ops = ChannelConfig(name: "ops", type: .exec)
        ops.command = ["/bin/true"]
        config.channels["ops"] = ops
        alerts = AlertService(database: store.database, config: config)
        evaluate = EvaluateService(database: store.database, config: config)
    }

    func at(_ minutes: Double) -> Date { now.addingTimeInterval(minutes * 60) }

    func quote(_ symbol: String, _ price: Double, minute: Double) throws {
        let time = at(minute).milliseconds
        try store.database.write { db in
            try db.execute(
                sql: "INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at) VALUES (?, ?, 'file', ?, ?)",
                arguments: [symbol, price, time, time])
        }
    }

    @discardableResult
    func add(_ symbol: String, minute: Double = 0, _ configure: (inout AlertInput) -> Void) throws -> Int64 {
        var input = AlertInput(symbol: symbol)
        configure(&input)
        return try alerts.add(input, now: at(minute)).id!
    }

    func run(minute: Double) throws -> EvaluateReport { try evaluate.run(now: at(minute)) }

    func count(_ sql: String) throws -> Int { try store.database.read { try Int.fetchOne($0, sql: sql)! } }

    @Test func catchUpFindsACrossingBetweenTwoRunsAndJudgesEachQuoteOnce() throws {
        try quote("AAPL", 190, minute: 0)
        let id = try add("AAPL", minute: 0.5) { $0.crossesAbove = "200" }
        // evaluate did not run while three quotes arrived; the crossing is between two of them
        try quote("AAPL", 199, minute: 1)
        try quote("AAPL", 201.35, minute: 2)
        try quote("AAPL", 199.5, minute: 3)
        let first = try run(minute: 3.5)
        #expect(first.notifications.map(\.message) == ["AAPL crossed above 200.00 at 201.35"])
        #expect(first.notifications.first?.alertId == id)
        #expect(first.notifications.first?.observedAt == at(2))
        #expect(first.evaluated == 1)
        // and a second run judges nothing again
        let second = try run(minute: 4)
        #expect(second.notifications.isEmpty)
        #expect(second.evaluated == 0)
        #expect(try count("SELECT count(*) FROM notifications") == 1)
        // re-armed by 199.5, the next crossing fires again
        try quote("AAPL", 200, minute: 5)
        #expect(try run(minute: 5.5).notifications.map(\.price) == [200])
    }

    @Test func notificationIsWrittenWithOneDeliveryPerChannelAndTheAlertState() throws {
        try quote("EUR/USD", 1.09, minute: 0)
        let id = try add("EUR/USD") { $0.above = "1.08"; $0.notify = ["ops", "stdout"] }
        let report = try run(minute: 1)
        let notification = try #require(report.notifications.first)
        #expect(notification.channels == ["ops", "stdout"])
        #expect(notification.user == "default")
        #expect(notification.message == "EUR/USD is at or above 1.08 at 1.09")
        let deliveries = try store.database.read { try DeliveryRecord.order(Column("id")).fetchAll($0) }
        #expect(deliveries.map(\.channel) == ["ops", "stdout"])
        #expect(deliveries.allSatisfy { $0.status == .pending && $0.notificationId == notification.id && $0.attempts == 0 })
        let alert = try alerts.show(id: id)
        #expect(alert.state == .firing)
        #expect(alert.lastFiredAt == at(0))
        #expect(try count("SELECT count(*) FROM alerts WHERE start_at IS NULL") == 1)
        #expect(try count("SELECT observed_at FROM evaluation_progress WHERE symbol = 'EUR/USD'") == Int(at(0).milliseconds))
    }

    @Test func aNewAlertStartsAtTheNewestQuoteAndOlderHistoryNeverFiresIt() throws {
        try quote("AAPL", 250, minute: -10)  // older history above the level
        try quote("AAPL", 190, minute: -5)
        let above200 = try add("AAPL") { $0.above = "200" }
        let above180 = try add("AAPL") { $0.above = "180" }
        let report = try run(minute: 0)
        // the newest quote (190) is judged: above 180 fires at once, above 200 does not
        #expect(report.notifications.map(\.alertId) == [above180])
        #expect(try alerts.show(id: above200).state == .armed)
        // an alert added later, after other alerts have judged the same quote, still judges it
        let late = try add("AAPL", minute: 1) { $0.below = "195" }
        #expect(try run(minute: 2).notifications.map(\.alertId) == [late])
    }

    @Test func aResumedAlertStartsAtTheNewestQuote() throws {
        try quote("MSFT", 100, minute: 0)
        let id = try add("MSFT") { $0.crossesAbove = "150" }
        _ = try run(minute: 0.5)
        _ = try alerts.pause(id: id)
        try quote("MSFT", 140, minute: 1)
        try quote("MSFT", 160, minute: 2)  // crossed while paused: not reported later
        _ = try run(minute: 2.5)
        _ = try alerts.resume(id: id, now: at(3))
        try quote("MSFT", 170, minute: 4)
        #expect(try run(minute: 4.5).notifications.isEmpty)  // its first quote (160) never crosses
        try quote("MSFT", 149, minute: 5)
        try quote("MSFT", 151, minute: 6)
        #expect(try run(minute: 6.5).notifications.map(\.price) == [151])
    }

    @Test func staleQuotesAreNeverJudgedAsCurrent() throws {
        try quote("AAPL", 100, minute: 0)
        let id = try add("AAPL") { $0.above = "50" }
        // max_age is one hour: two hours later the quote is no current price
        let report = try run(minute: 120)
        #expect(report.notifications.isEmpty)
        #expect(report.evaluated == 0)
        #expect(try alerts.show(id: id).state == .armed)
        try quote("AAPL", 101, minute: 121)
        #expect(try run(minute: 122).notifications.map(\.price) == [101])
    }

    @Test func aCrossingOverAGapLongerThanMaxAgeIsFound() throws {
        try quote("AAPL", 190, minute: 0)
        _ = try add("AAPL") { $0.crossesAbove = "200" }
        _ = try run(minute: 1)
        // a weekend: the next quote comes two days later, on the other side of the level
        try quote("AAPL", 205, minute: 2 * 24 * 60)
        #expect(try run(minute: 2 * 24 * 60 + 1).notifications.map(\.price) == [205])
    }

    @Test func expiredAlertsBecomeExpiredAndNeverFire() throws {
        try quote("AAPL", 300, minute: 0)
        let id = try add("AAPL") { $0.above = "200"; $0.expires = "2m" }
        try quote("AAPL", 301, minute: 1)
        let report = try run(minute: 3)
        #expect(report.notifications.isEmpty)
        #expect(report.expired == [id])
        #expect(try alerts.show(id: id).state == .expired)
    }

    @Test func riseUsesTheLastQuoteAtOrBeforeTheWindowAndReportsInsufficientHistory() throws {
        try quote("EUR/USD", 1.00, minute: 0)
        let rise = try add("EUR/USD") { $0.rise = "5%"; $0.within = "10m" }
        try quote("EUR/USD", 1.06, minute: 5)
        let early = try run(minute: 6)
        // no quote at or before minute -5: insufficient history, no firing
        #expect(early.notifications.isEmpty)
        #expect(early.insufficientHistory == [rise])
        try quote("EUR/USD", 1.04, minute: 10)  // reference: the quote at minute 0 (1.00) -> 4%
        try quote("EUR/USD", 1.05, minute: 11)  // reference: still minute 0 (the last at or before 1) -> exactly 5%
        let later = try run(minute: 12)
        #expect(later.notifications.map(\.message) == ["EUR/USD rose 5.0% within 10m to 1.05"])
        #expect(later.insufficientHistory == [])
    }

    @Test func onceFiresOneNotificationAcrossManyQuotes() throws {
        try quote("AAPL", 100, minute: 0)
        let id = try add("AAPL") { $0.above = "150"; $0.trigger = "once" }
        for minute in 1...5 { try quote("AAPL", 150 + Double(minute), minute: Double(minute)) }
        #expect(try run(minute: 6).notifications.count == 1)
        try quote("AAPL", 200, minute: 7)
        #expect(try run(minute: 8).notifications.isEmpty)
        #expect(try alerts.show(id: id).state == .fired)
    }

    @Test func everyFiresPerQuoteAndCooldownHoldsAcrossRuns() throws {
        try quote("AAPL", 201, minute: 0)
        _ = try add("AAPL") { $0.above = "200"; $0.trigger = "every"; $0.cooldown = "3m" }
        #expect(try run(minute: 0.5).notifications.count == 1)
        try quote("AAPL", 202, minute: 1)
        #expect(try run(minute: 1.5).notifications.isEmpty)  // inside the cooldown
        try quote("AAPL", 203, minute: 3)
        #expect(try run(minute: 3.5).notifications.map(\.price) == [203])
    }

    @Test func aFailedWriteLeavesNothingHalfDone() throws {
        try quote("AAPL", 100, minute: 0)
        let id = try add("AAPL") { $0.above = "50" }
        // a delivery row that cannot be written (as on a full disk) fails the whole run
        try store.database.write { try $0.execute(sql: "CREATE TRIGGER broken BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'disk gone'); END") }
        #expect(expectError { _ = try run(minute: 1) } != nil)
        #expect(try count("SELECT count(*) FROM notifications") == 0)
        #expect(try count("SELECT count(*) FROM evaluation_progress") == 0)
        #expect(try alerts.show(id: id).state == .armed)
        // once it can write, the same firing is written exactly once
        try store.database.write { try $0.execute(sql: "DROP TRIGGER broken") }
        #expect(try run(minute: 2).notifications.count == 1)
        #expect(try run(minute: 3).notifications.isEmpty)
        #expect(try count("SELECT count(*) FROM deliveries") == 1)
    }

    @Test func theSchemaRefusesASecondNotificationForOneAlertAndQuote() throws {
        try quote("AAPL", 100, minute: 0)
        _ = try add("AAPL") { $0.above = "50" }
        _ = try run(minute: 1)
        let error = expectError {
            try store.database.write { db in
                try db.execute(sql: "INSERT INTO notifications (alert_id, user_id, quote_id, symbol, price, observed_at, message, created_at) SELECT alert_id, user_id, quote_id, symbol, price, observed_at, message, created_at FROM notifications")
            }
        }
        #expect(error?.message.contains("UNIQUE") == true)
    }

    @Test func alertsOfOtherSymbolsAndPausedAlertsAreNotTouched() throws {
        try quote("AAPL", 100, minute: 0)
        try quote("MSFT", 100, minute: 0)
        let paused = try add("AAPL") { $0.above = "50" }
        _ = try alerts.pause(id: paused)
        let msft = try add("MSFT") { $0.above = "50" }
        let report = try run(minute: 1)
        #expect(report.notifications.map(\.alertId) == [msft])
        #expect(try alerts.show(id: paused).state == .paused)
    }
}
