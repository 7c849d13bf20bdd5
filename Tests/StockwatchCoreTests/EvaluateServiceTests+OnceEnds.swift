import Foundation
import GRDB
import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore

/// Migration v23: evaluate keeps a `once` alert's end aside (`alert_ends`) instead of
/// writing the alert; every reader sees it ended, and the fold writes it in.
extension EvaluateServiceTests {
    func stored(_ id: Int64) throws -> String? {
        try store.database.read { try String.fetchOne($0, sql: "SELECT state FROM alerts WHERE id = ?", arguments: [id]) }
    }

    @Test func aOnceAlertsEndIsKeptAsideAndEveryReaderSeesItEnded() throws {
        try quote("AAPL", 100, minute: 0)
        try quote("MSFT", 100, minute: 0)
        let once = try add("AAPL") { $0.above = "150"; $0.trigger = "once"; $0.expires = "10m" }
        _ = try add("MSFT") { $0.above = "150" }
        try quote("AAPL", 151, minute: 1)
        #expect(try run(minute: 1.5).notifications.map(\.alertId) == [once])
        // Aside: the alert's row is not written.
        #expect(try stored(once) == "armed")
        #expect(try count("SELECT count(*) FROM alert_ends WHERE alert_id = \(once)") == 1)
        #expect(try alerts.show(id: once).state == .fired)
        #expect(try store.database.alerts(AlertQuery(state: .fired)).map(\.id) == [once])
        #expect(try store.database.alerts(AlertQuery(state: .armed)).map(\.id) != [once])
        // Not active: fetch no longer asks for its symbol, evaluate neither judges nor counts it.
        #expect(try store.database.watchedSymbols(watchList: []) == ["MSFT"])
        try quote("AAPL", 140, minute: 2)
        try quote("AAPL", 160, minute: 3)
        let again = try run(minute: 3.5)
        #expect(again.notifications.isEmpty)
        #expect(again.evaluated == 0)
        // Its expiry passes: it stays fired, not expired.
        let late = try run(minute: 12)
        #expect(late.expired.isEmpty)
        #expect(try alerts.show(id: once).state == .fired)
        // Refused as a fired alert is.
        #expect(expectError { _ = try alerts.pause(id: once) }?.message.contains("is fired") == true)
    }

    @Test func theFoldWritesTheEndsAndALaterStateWriteSupersedesOne() throws {
        try quote("AAPL", 100, minute: 0)
        let first = try add("AAPL") { $0.above = "150"; $0.trigger = "once" }
        let second = try add("AAPL") { $0.below = "50"; $0.trigger = "once" }
        let removed = try add("AAPL") { $0.above = "120"; $0.trigger = "once" }
        try quote("AAPL", 151, minute: 1)
        #expect(try run(minute: 1.5).notifications.map(\.alertId) == [first, removed])
        try alerts.remove(ids: [removed])
        #expect(try count("SELECT count(*) FROM alert_ends") == 1)
        #expect(try store.database.foldAlertEnds() == 1)
        #expect(try stored(first) == "fired")
        #expect(try alerts.show(id: first).state == .fired)
        #expect(try count("SELECT count(*) FROM alert_ends") == 0)
        #expect(try store.database.foldAlertEnds() == 0)
        // Any later write of an alert's state outranks what was kept aside; the fold
        // leaves it as written.
        try quote("AAPL", 49, minute: 2)
        #expect(try run(minute: 2.5).notifications.map(\.alertId) == [second])
        try store.database.write { try $0.execute(sql: "UPDATE alerts SET state = 'paused' WHERE id = ?", arguments: [second]) }
        #expect(try alerts.show(id: second).state == .paused)
        #expect(try store.database.alerts(AlertQuery(state: .fired)).map(\.id) == [first])
        #expect(try store.database.foldAlertEnds() == 0)
        #expect(try stored(second) == "paused")
        #expect(try count("SELECT count(*) FROM alert_ends") == 0)
    }
}
