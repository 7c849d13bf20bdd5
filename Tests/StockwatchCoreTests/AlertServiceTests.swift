import Foundation
import GRDB
import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer
@testable import StockwatchStore

@Suite struct AlertServiceTests {
    let store: TemporaryStore
    let service: AlertService
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        store = try TemporaryStore()
        var config = Config()
        var ops = ChannelConfig(name: "ops", type: .exec)
        ops.command = ["/bin/true"]
        config.channels["ops"] = ops
        service = AlertService(database: store.database, config: config)
    }

    func input(_ symbol: String, _ configure: (inout AlertInput) -> Void) -> AlertInput {
        var input = AlertInput(symbol: symbol)
        configure(&input)
        return input
    }

    @Test func addStoresCanonicalAlertForDefaultUser() throws {
        // Given a fresh database, when an alert is added with no user
        let alert = try service.add(input("eur/usd") { $0.fall = "2%"; $0.within = "24h"; $0.cooldown = "1h"; $0.notify = ["ops", "ops", "stdout"] }, now: now)
        // then it belongs to the default user, upper-cased, with channels de-duplicated
        #expect(alert.user == "default")
        #expect(alert.symbol == "EUR/USD")
        #expect(alert.condition == .init(.fall(percent: 2, windowSeconds: 86_400)))
        #expect(alert.channels == ["ops", "stdout"])
        #expect(alert.cooldownSeconds == 3_600)
        #expect(alert.state == .armed)
        #expect(alert.trigger == .rearm)
        #expect(try service.show(id: alert.id!) == alert)
    }

    @Test func badInputIsRejectedBeforeAnythingIsWritten() throws {
        let cases: [(AlertInput, String)] = [
            (input("AAPL") { _ in }, "no condition"),
            (input("AAPL") { $0.above = "1"; $0.below = "2" }, "exactly one condition"),
            (input("AAPL") { $0.rise = "5" }, "needs --within"),
            (input("AAPL") { $0.above = "5"; $0.within = "1h" }, "--within goes only"),
            (input("AAPL") { $0.above = "5"; $0.notify = ["pager"] }, "--notify"),
            (input("AAPL") { $0.above = "5"; $0.trigger = "twice" }, "--trigger"),
            (input("AAPL") { $0.above = "5"; $0.trigger = "once"; $0.rearmMargin = "1" }, "--rearm-margin"),
            (input("AAPL") { $0.fall = "100"; $0.within = "1h" }, "cannot fall 100%"),
            (input("AAPL") { $0.above = "5"; $0.user = "nobody" }, "no user 'nobody'"),
            (input("AAPL") { $0.above = "5"; $0.expires = "2001-01-01" }, "past"),
        ]
        for (input, expected) in cases {
            let error = expectError { _ = try service.add(input, now: now) }
            #expect(error?.message.contains(expected) == true, "\(String(describing: error)) should mention \(expected)")
        }
        #expect(try store.database.read { try AlertRecord.fetchCount($0) + UserRecord.fetchCount($0) } == 0)
    }

    @Test func removeIsAllOrNothing() throws {
        let a = try service.add(input("AAPL") { $0.above = "1" }, now: now)
        let b = try service.add(input("MSFT") { $0.below = "1" }, now: now)
        #expect(expectError { try service.remove(ids: [a.id!, 999]) } == .notFound(kind: "alert", id: "999"))
        #expect(try service.list().count == 2)
        try service.remove(ids: [a.id!, b.id!])
        #expect(try service.list().isEmpty)
    }

    @Test func pauseAndResume() throws {
        let alert = try service.add(input("AAPL") { $0.above = "1" }, now: now)
        #expect(try service.pause(id: alert.id!).state == .paused)
        #expect(try service.pause(id: alert.id!).state == .paused)
        #expect(try service.list(.init(state: .paused)).count == 1)
        #expect(try service.resume(id: alert.id!, now: now).state == .armed)
        try store.database.write { db in try db.execute(sql: "UPDATE alerts SET state = 'fired'") }
        #expect(expectError { _ = try service.pause(id: alert.id!) }?.exitStatus == .usage)
        #expect(expectError { _ = try service.resume(id: 42) } == .notFound(kind: "alert", id: "42"))
    }

    @Test func listFilters() throws {
        _ = try UserService(database: store.database).add(name: "alice")
        _ = try service.add(input("AAPL") { $0.above = "1"; $0.user = "alice" }, now: now)
        _ = try service.add(input("aapl") { $0.below = "1" }, now: now)
        _ = try service.add(input("MSFT") { $0.below = "1" }, now: now)
        #expect(try service.list(.init(user: "alice")).count == 1)
        #expect(try service.list(.init(symbol: "aapl")).count == 2)
        #expect(expectError { _ = try service.list(.init(user: "bob")) } == .notFound(kind: "user", id: "bob"))
    }

    @Test func exportImportRoundTrip() throws {
        _ = try service.add(input("AAPL") { $0.crossesAbove = "200.5"; $0.trigger = "every"; $0.note = "n" }, now: now)
        let paused = try service.add(input("EUR/USD") { $0.rise = "1.5%"; $0.within = "4h"; $0.rearmMargin = "0.5" }, now: now)
        _ = try service.pause(id: paused.id!)
        let exported = try JSONOutput.encoder().encode(try service.list())

        let other = try TemporaryStore()
        let target = AlertService(database: other.database, config: service.config)
        #expect(try target.importAlerts(exported, source: "backup.json", now: now) == 2)
        let strip = { (alerts: [AlertJSON]) in alerts.map { var a = $0; a.id = nil; a.createdAt = nil; return a } }
        #expect(strip(try target.list()) == strip(try service.list()))
    }

    @Test func importIsAllOrNothingAndNamesThePosition() throws {
        let ndjson = """
            {"symbol":"AAPL","condition":{"kind":"above","value":10}}

            {"symbol":"MSFT","condition":{"kind":"below","value":-1}}
            """
        let error = expectError { _ = try service.importAlerts(Data(ndjson.utf8), source: "in.ndjson", now: now) }
        #expect(error?.exitStatus == .dataError)
        #expect(error?.message.hasPrefix("in.ndjson: line 3: ") == true)
        let array = #"[{"symbol":"AAPL","condition":{"kind":"above","value":10}}, {"symbol":"AAPL","condition":{"kind":"sideways","value":1}}]"#
        let arrayError = expectError { _ = try service.importAlerts(Data(array.utf8), source: "in.json", now: now) }
        #expect(arrayError?.message.hasPrefix("in.json: record 2: ") == true)
        let missing = #"[{"symbol":"AAPL","condition":{"kind":"rise","value":10}}]"#
        #expect(expectError { _ = try service.importAlerts(Data(missing.utf8), source: "m", now: now) }?.message.contains("record 1") == true)
        #expect(try store.database.read { try AlertRecord.fetchCount($0) } == 0)
    }
}
