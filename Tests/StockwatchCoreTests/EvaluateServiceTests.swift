import Foundation
import GRDB
import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer
@testable import StockwatchStore

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
        // Started without a write to the alert: evaluate judged through its round.
        #expect(try count("SELECT count(*) FROM alerts WHERE start_round <= (SELECT judged_through FROM evaluation_starts)") == 1)
        #expect(try count("SELECT observed_at FROM evaluation_progress WHERE symbol = 'EUR/USD'") == Int(at(0).milliseconds))
    }

    /// v19: a level that re-arms at its level keeps `armed` stored while it fires; its
    /// symbol's last judged price says its state, to every reader.
    @Test func aLevelsStateComesFromItsSymbolsLastJudgedPrice() throws {
        try quote("AAPL", 95, minute: 0)
        let derived = try add("AAPL") { $0.above = "100" }
        let margin = try add("AAPL") { $0.above = "100"; $0.rearmMargin = "1%" }
        _ = try run(minute: 0.5)
        func stored(_ id: Int64) throws -> String? {
            try store.database.read { try String.fetchOne($0, sql: "SELECT state FROM alerts WHERE id = ?", arguments: [id]) }
        }
        func shown(_ id: Int64) throws -> AlertState? { try alerts.show(id: id).state }
        try quote("AAPL", 101, minute: 1)
        #expect(try run(minute: 1.5).notifications.map(\.alertId) == [derived, margin])
        #expect(try shown(derived) == .firing)
        #expect(try stored(derived) == "armed")
        // The margin's firing is kept aside (v25).
        #expect(try stored(margin) == "armed")
        #expect(try count("SELECT count(*) FROM alert_firing WHERE alert_id = \(margin)") == 1)
        #expect(try store.database.alerts(AlertQuery(state: .firing)).map(\.id) == [derived, margin])
        #expect(try store.database.alerts(AlertQuery(state: .armed)).isEmpty)
        try quote("AAPL", 102, minute: 2)
        #expect(try run(minute: 2.5).notifications.isEmpty)
        // Back under the level: the derived one re-arms; the margin wants under 99.
        try quote("AAPL", 99.5, minute: 3)
        _ = try run(minute: 3.5)
        #expect(try shown(derived) == .armed)
        #expect(try shown(margin) == .firing)
        try quote("AAPL", 100, minute: 4)
        #expect(try run(minute: 4.5).notifications.map(\.alertId) == [derived])
        // A quote too old to judge moves the watermark, not the state.
        try quote("AAPL", 90, minute: 5)
        _ = try run(minute: 70)
        #expect(try shown(derived) == .firing)
        #expect(try stored(derived) == "armed")
        // Paused while firing, then resumed: it starts again, armed, and fires on its
        // first current quote.
        _ = try alerts.pause(id: derived)
        #expect(try shown(derived) == .paused)
        _ = try alerts.resume(id: derived, now: at(71))
        #expect(try shown(derived) == .armed)
        try quote("AAPL", 100.5, minute: 72)
        #expect(try run(minute: 72.5).notifications.map(\.alertId) == [derived])
        #expect(try shown(derived) == .firing)
        #expect(try shown(margin) == .firing)
    }

    /// v25: a `rearm` alert that fires keeps its row armed and its firing as a row of
    /// `alert_firing`, which every reader shows; it re-arms by losing the row (whether or
    /// not the new prices reach its level), and pausing or expiring it removes the row. A
    /// `firing` written before v25 still re-arms.
    @Test func aRearmAlertsFiringIsKeptAside() throws {
        try quote("AAPL", 95, minute: 0)
        let crossing = try add("AAPL") { $0.crossesAbove = "100" }
        let paused = try add("AAPL") { $0.crossesAbove = "100" }
        let written = try add("AAPL") { $0.crossesAbove = "100" }
        let expiring = try add("AAPL") { $0.crossesAbove = "100"; $0.expires = "2m" }
        _ = try run(minute: 0.5)
        func stored(_ id: Int64) throws -> String? {
            try store.database.read { try String.fetchOne($0, sql: "SELECT state FROM alerts WHERE id = ?", arguments: [id]) }
        }
        func aside() throws -> [Int64] {
            try store.database.read { try Int64.fetchAll($0, sql: "SELECT alert_id FROM alert_firing ORDER BY alert_id") }
        }
        try quote("AAPL", 101, minute: 1)
        #expect(try run(minute: 1.5).notifications.map(\.alertId) == [crossing, paused, written, expiring])
        #expect(try [crossing, paused, written].map(stored) == ["armed", "armed", "armed"])
        #expect(try aside() == [crossing, paused, written, expiring])
        #expect(try [crossing, paused, written].map { try alerts.show(id: $0).state } == [.firing, .firing, .firing])
        #expect(try store.database.alerts(AlertQuery(state: .firing)).map(\.id) == [crossing, paused, written, expiring])
        // As a store from before v25 (or a copy) has it: written, not aside.
        try store.database.write { db in
            try db.execute(sql: "DELETE FROM alert_firing WHERE alert_id = ?", arguments: [written])
            try db.execute(sql: "UPDATE alerts SET state = 'firing' WHERE id = ?", arguments: [written])
        }
        _ = try alerts.pause(id: paused)
        #expect(try alerts.show(id: paused).state == .paused)
        #expect(try aside() == [crossing, expiring])
        // Still over the level: firing, nothing written; the expired one's row goes.
        try quote("AAPL", 102, minute: 2)
        #expect(try run(minute: 2.5).expired == [expiring])
        #expect(try alerts.show(id: expiring).state == .expired)
        #expect(try aside() == [crossing])
        // Far under it, where the armed crossings' seek does not reach: both re-arm.
        try quote("AAPL", 90, minute: 3)
        #expect(try run(minute: 3.5).notifications.isEmpty)
        #expect(try aside().isEmpty)
        #expect(try [crossing, written].map { try alerts.show(id: $0).state } == [.armed, .armed])
        #expect(try stored(written) == "armed")
        try quote("AAPL", 100.5, minute: 4)
        #expect(try run(minute: 4.5).notifications.map(\.alertId) == [crossing, written])
        #expect(try aside() == [crossing, written])
    }

    /// Should a started level ever judge to a state its symbol's last judged price cannot
    /// say (not expected: it judged that price; here the price is tampered with, and every
    /// new alert is read, as without the seeks), it starts again after the newest quote,
    /// armed, as an armed follower would.
    @Test func aLevelThatDisagreesWithItsSymbolsPriceStartsAgainArmed() throws {
        try quote("AAPL", 95, minute: 0)
        let follower = try add("AAPL") { $0.above = "50" }
        _ = try run(minute: 0.5)
        let id = try add("AAPL", minute: 1) { $0.above = "100" }
        try store.database.write { try $0.execute(sql: "UPDATE evaluation_progress SET judged_price = 150") }
        #expect(try evaluate.run(now: at(1.5), prefilter: false).notifications.isEmpty)
        #expect(try alerts.show(id: id).state == .armed)
        #expect(try count("SELECT count(*) FROM alerts WHERE id = \(id) AND start_round > (SELECT judged_through FROM evaluation_starts)") == 1)
        try quote("AAPL", 101, minute: 2)
        #expect(try run(minute: 2.5).notifications.map(\.alertId) == [id])
        #expect(try alerts.show(id: id).state == .firing)
        #expect(try alerts.show(id: follower).state == .firing)
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

    @Test func aNewAlertsStaleStartQuoteIsStillThePreviousPriceOfItsFirstCrossing() throws {
        // One alert added before any quote (it judges from the first fresh one), another
        // after a quote that is stale by the time evaluate runs.
        let early = try add("AAPL") { $0.crossesAbove = "200" }
        try quote("AAPL", 190, minute: 0)
        let late = try add("AAPL", minute: 1) { $0.crossesAbove = "200" }
        try quote("AAPL", 210, minute: 180)
        let report = try run(minute: 181)
        // the late alert saw 190 then 210: a crossing; for the early one 210 is the first fresh quote
        #expect(report.notifications.map(\.alertId) == [late])
        #expect(try alerts.show(id: early).state == .armed)
    }

    /// Migration v15: a start costs no write to the alert; evaluate passes its round.
    /// An alert of the newest round may be removed: the next one still starts.
    @Test func anAlertAddedAfterTheNewestRoundWasRemovedStillStarts() throws {
        try quote("AAPL", 190, minute: 0)
        let first = try add("AAPL") { $0.above = "200" }
        _ = try run(minute: 0.5)
        try alerts.remove(ids: [first])
        let second = try add("AAPL", minute: 1) { $0.above = "180" }  // its start quote (190) is above 180
        #expect(try run(minute: 1.5).notifications.map(\.alertId) == [second])
        #expect(try run(minute: 2).notifications.isEmpty)
    }

    /// An alert whose start no quote has reached yet waits in a later round, judged once
    /// its symbol has a fresh quote, and its first quote has no previous price.
    @Test func anAlertWithoutAFreshQuoteWaitsForOne() throws {
        let waiting = try add("AAPL") { $0.crossesAbove = "200" }
        let level = try add("AAPL") { $0.above = "200"; $0.trigger = "once" }
        try quote("AAPL", 150, minute: -120)  // stale by the first run
        #expect(try run(minute: 0).notifications.isEmpty)
        #expect(try run(minute: 0.5).notifications.isEmpty)
        try quote("AAPL", 210, minute: 1)
        // 150 was stale: no crossing from it; the level fires on the first fresh quote
        #expect(try run(minute: 1.5).notifications.map(\.alertId) == [level])
        try quote("AAPL", 190, minute: 2)
        try quote("AAPL", 205, minute: 3)
        #expect(try run(minute: 3.5).notifications.map(\.alertId) == [waiting])
    }

    /// New alerts of a symbol whose newest quote was judged already (no fresh quote after
    /// its watermark) still judge the quote they started at: the seeks over their range
    /// find the one that fires, and each active one counts as evaluated, a paused one not.
    @Test func newAlertsOfASymbolWithoutNewQuotesJudgeTheirStartAndCount() throws {
        try quote("AAPL", 190, minute: 0)
        try add("AAPL") { $0.below = "1" }
        #expect(try run(minute: 0.5).evaluated == 1)  // the watermark passes 190
        let fires = try add("AAPL", minute: 1) { $0.above = "180" }
        try add("AAPL", minute: 1) { $0.above = "500" }
        try add("AAPL", minute: 1) { $0.rise = "50%"; $0.within = "1h" }
        _ = try alerts.pause(id: try add("AAPL", minute: 1) { $0.above = "100" })
        let report = try run(minute: 1.5)
        #expect(report.notifications.map(\.alertId) == [fires])
        #expect(report.evaluated == 3)
        #expect(try run(minute: 2).notifications.isEmpty)
    }

    /// Alerts that were waiting to start when v15 came keep waiting; the others follow.
    @Test func startsWaitingBeforeMigrationV15StillStart() throws {
        let folder = NSTemporaryDirectory() + "stockwatch-v15-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let old = try DatabaseQueue(path: folder + "/test.db")
        try AppDatabase.migrator.migrate(old, upTo: "v14-check-sets-as-comparisons")
        let time = at(0).milliseconds
        try old.write { db in
            try db.execute(sql: "INSERT INTO users (id, name, token_hash, created_at) VALUES (1, 'default', '\(String(repeating: "a", count: 64))', 0)")
            try db.execute(sql: "INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at) VALUES ('AAPL', 190, 'file', ?, ?)", arguments: [time, time])
            try db.execute(sql: "INSERT INTO evaluation_progress (symbol, observed_at) VALUES ('AAPL', ?)", arguments: [time])
            // 1 follows (judged 190 already); 2 was added at 190 and waits to judge it
            for (id, start) in [(1, nil), (2, time)] as [(Int64, Int64?)] {
                try db.execute(sql: """
                    INSERT INTO alerts (id, user_id, symbol, kind, value, trigger, channels, created_at, start_at)
                    VALUES (?, 1, 'AAPL', 'above', 180, 'once', '["stdout"]', 0, ?)
                    """, arguments: [id, start])
            }
        }
        try old.close()
        let database = try AppDatabase(path: folder + "/test.db")
        let report = try EvaluateService(database: database, config: Config()).run(now: at(1))
        #expect(report.notifications.map(\.alertId) == [2])
    }

    /// The evaluated count comes from the seeks' partial indexes (migration v16): every
    /// kind of active alert of a symbol with a new price counts once, a paused one not.
    @Test func everyKindOfActiveAlertCountsAsEvaluated() throws {
        try quote("AAPL", 100, minute: 0)
        let kinds: [(inout AlertInput) -> Void] = [
            { $0.above = "500" }, { $0.below = "1" }, { $0.crossesAbove = "500" }, { $0.crossesBelow = "1" },
            { $0.rise = "50%"; $0.within = "1h" }, { $0.fall = "50%"; $0.within = "1h" },
            { $0.rise = "50%"; $0.since = "close" }, { $0.fall = "50%"; $0.since = "close" },
            { $0.trailingFall = "50%" }, { $0.trailingRise = "50%" }, { $0.newHigh = "52w" }, { $0.newLow = "52w" },
        ]
        for kind in kinds { try add("AAPL", kind) }
        _ = try alerts.pause(id: try add("AAPL") { $0.above = "500" })
        try add("MSFT") { $0.above = "500" }  // no price at all
        _ = try run(minute: 0.5)
        try quote("AAPL", 101, minute: 1)
        #expect(try run(minute: 1.5).evaluated == 12)
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

    @Test func anAlertThatFiresInARunIsNotAlsoReportedAsLackingHistory() throws {
        try quote("EUR/USD", 1.00, minute: 0)
        let rise = try add("EUR/USD") { $0.rise = "5%"; $0.within = "10m" }
        try quote("EUR/USD", 1.01, minute: 5)  // nothing at or before minute -5: no reference yet
        try quote("EUR/USD", 1.06, minute: 10)  // reference: minute 0 -> 6%
        let report = try run(minute: 11)
        #expect(report.notifications.map(\.alertId) == [rise])
        #expect(report.insufficientHistory == [])
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
                try db.execute(sql: "INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at) SELECT alert_id, user_id, symbol, price, observed_at, message, created_at FROM notifications")
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

/// The candidate scan may only leave out alerts that would not change: evaluate with it
/// and without it (every alert judged in Swift) must agree on random markets.
@Suite struct EvaluatePrefilterTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func prefilteredAndFullEvaluationAgree(seed: UInt64) throws {
        // The third judges its candidates five at a time, as evaluate does 20,000 at a time,
        // and seeks them a symbol at a time (`seekRun`), as evaluate does 1,000 at a time.
        // The fourth writes every state, as before migration v19 (`derivesLevels` off): the
        // states it stores are what the others derive. The fifth reads its candidates with
        // one descent a symbol (`readsEachSymbolOnce`), as evaluate does where symbols have
        // few alerts each, two symbols at a time.
        let stores = try (0..<5).map { _ in try TemporaryStore() }
        var config = Config()
        config.maxAgeSeconds = 600
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var random = Generator(state: seed)
        let symbols = ["AAA", "BBB", "CCC", "DDD"]
        var inputs: [AlertInput] = []
        for _ in 0..<240 {
            var input = AlertInput(symbol: symbols.randomElement(using: &random)!)
            let level = String(format: "%.2f", Double.random(in: 90...110, using: &random))
            let percent = ["0.5", "1", "3"].randomElement(using: &random)!
            switch Int.random(in: 0..<12, using: &random) {
            case 0: input.above = level
            case 1: input.below = level
            case 2: input.crossesAbove = level
            case 3: input.crossesBelow = level
            case 4: input.rise = percent; input.within = ["1m", "5m", "30m"].randomElement(using: &random)!
            case 5: input.fall = percent; input.within = ["1m", "5m", "30m"].randomElement(using: &random)!
            case 6: input.trailingFall = percent
            case 7: input.trailingRise = percent
            case 8: input.rise = percent; input.since = "close"
            case 9: input.fall = percent; input.since = "close"
            // 60d reaches past the daily history: insufficient, never fired.
            case 10: input.newHigh = ["5d", "20d", "60d"].randomElement(using: &random)!
            default: input.newLow = ["5d", "20d", "60d"].randomElement(using: &random)!
            }
            input.trigger = ["once", "rearm", "rearm", "every"].randomElement(using: &random)!
            if input.trigger == "rearm", Bool.random(using: &random) { input.rearmMargin = ["0.5%", "2%"].randomElement(using: &random)! }
            if Int.random(in: 0..<4, using: &random) == 0 { input.cooldown = ["2m", "10m"].randomElement(using: &random)! }
            inputs.append(input)
        }
        // Daily closes for the since-close and new high/low rules: 40 days before the
        // quotes' day for three symbols (DDD has none), and a provider's previous close for AAA.
        var daily: [(String, String, Double)] = []
        for symbol in symbols.dropLast() {
            for back in 1...40 {
                daily.append((symbol, MarketDay.adding(-back, to: "2027-01-15")!, (Double.random(in: 96...104, using: &random) * 100).rounded() / 100))
            }
        }
        let dailyRows = daily
        for store in stores {
            try store.database.write { db in
                for (symbol, day, close) in dailyRows {
                    try db.execute(
                        sql: "INSERT INTO daily_prices (symbol, day, close, source) VALUES (?, ?, ?, 'file')",
                        arguments: [symbol, day, close])
                }
                try db.execute(sql: "INSERT INTO previous_closes (symbol, day, close) VALUES ('AAA', '2027-01-15', 99.5)")
            }
        }
        var prices = Dictionary(uniqueKeysWithValues: symbols.map { ($0, 100.0) })
        var minute = 0.0
        var results: [[String]] = Array(repeating: [], count: stores.count)
        var notified = 0
        var derivedFiring = 0
        for round in 0..<40 {
            // New quotes: a random walk, sometimes several per symbol, sometimes none.
            var quotes: [(String, Double, Int64)] = []
            for symbol in symbols where Int.random(in: 0..<5, using: &random) > 0 {
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    minute += 1
                    prices[symbol]! *= 1 + Double.random(in: -0.02...0.02, using: &random)
                    quotes.append((symbol, (prices[symbol]! * 100).rounded() / 100, start.addingTimeInterval(minute * 60).milliseconds))
                }
            }
            // Alerts arrive over time, so some start mid-history.
            let arriving = round < 8 ? Array(inputs[(round * 30)..<(round * 30 + 30)]) : []
            let now = start.addingTimeInterval((minute + 0.5) * 60)
            let batch = quotes
            // Some alerts are paused or resumed between runs (a resumed one starts again).
            let added = min(round, 8) * 30
            let toggled: [(id: Int64, pause: Bool)] = added == 0 ? [] : (0..<3).map { _ in
                (Int64.random(in: 1...Int64(added), using: &random), Bool.random(using: &random))
            }
            for (index, store) in stores.enumerated() {
                try store.database.write { db in
                    for (symbol, price, time) in batch {
                        try db.execute(
                            sql: "INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at) VALUES (?, ?, 'file', ?, ?)",
                            arguments: [symbol, price, time, time])
                    }
                }
                let service = AlertService(database: store.database, config: config)
                for input in arriving { _ = try service.add(input, now: now) }
                for (id, pause) in toggled {
                    // The same refusals in every store (already paused, not paused, expired).
                    _ = try? pause ? service.pause(id: id) : service.resume(id: id, now: now)
                }
                let report = index < 2 || index == 4
                    ? try Evaluation.$readsEachSymbolOnce.withValue(index == 4 ? true : nil) {
                        try Evaluation.$seekRun.withValue(index == 4 ? 2 : Evaluation.seekRun) {
                            try EvaluateService(database: store.database, config: config).run(now: now, prefilter: index != 1)
                        }
                    }
                    : try Evaluation.$seekRun.withValue(index == 2 ? 1 : Evaluation.seekRun) { try store.database.write { db in
                        var evaluation = Evaluation(now: now.milliseconds, staleBefore: now.milliseconds - 600_000, prefilter: true)
                        evaluation.chunk = index == 2 ? 5 : evaluation.chunk
                        evaluation.derivesLevels = index == 2
                        return try evaluation.run(db)
                    } }
                results[index].append(contentsOf: report.notifications.map { "\($0.alertId) \($0.observedAt) \($0.message)" })
                if index == 0 { notified += report.notifications.count }
                results[index].append("insufficient \(report.insufficientHistory)")
                results[index].append("evaluated \(report.evaluated)")
                let states = try store.database.read { db in
                    try String.fetchAll(db, sql: """
                        SELECT id || ' ' || \(AlertRecord.state(of: "alerts")) || ' ' || ifnull(\(AlertRecord.lastFiredAt(of: "alerts")), '-')
                            || ' ' || start_round FROM alerts ORDER BY id
                        """)
                }
                if index == 0 {
                    derivedFiring += try store.database.read { db in
                        try Int.fetchOne(db, sql: "SELECT count(*) FROM alerts WHERE state = 'armed' AND \(AlertRecord.state(of: "alerts")) = 'firing'") ?? 0
                    }
                }
                if index == 3 {
                    let derivedAway = try store.database.read { db in
                        try String.fetchAll(db, sql: "SELECT id || ' ' || state FROM alerts WHERE state <> \(AlertRecord.state(of: "alerts"))")
                    }
                    #expect(derivedAway.isEmpty, "round \(round): a written state the last judged price contradicts: \(derivedAway)")
                }
                results[index].append(contentsOf: states)
                results[index].append(contentsOf: try store.database.read { db in
                    try String.fetchAll(db, sql: "SELECT 'trail ' || alert_id || ' ' || trailing_from FROM alert_trails ORDER BY alert_id")
                })
            }
        }
        #expect(notified > 50, "the market must move enough to exercise the rules")
        #expect(derivedFiring > 20, "levels must be firing with their state derived, not written")
        let firedKinds = try stores[0].database.read { db in
            try Set(String.fetchAll(db, sql: "SELECT DISTINCT a.kind FROM notifications n JOIN alerts a ON a.id = n.alert_id"))
        }
        let expectedKinds: Set = ["above", "below", "rise", "fall", "trailing_fall", "trailing_rise", "rise_since_close", "fall_since_close", "new_high", "new_low"]
        #expect(expectedKinds.isSubset(of: firedKinds), "kinds that never fired: \(expectedKinds.subtracting(firedKinds).sorted())")
        // The first difference, not two long dumps.
        for other in 1..<stores.count {
            let difference = zip(results[0], results[other]).enumerated().first { $0.element.0 != $0.element.1 }
            #expect(difference == nil, "store \(other), line \(difference?.offset ?? 0): \(difference?.element.0 ?? "") != \(difference?.element.1 ?? "")")
            #expect(results[0].count == results[other].count)
        }
    }
}
