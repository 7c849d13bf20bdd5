import Foundation
import GRDB
import Testing

@Suite struct EvaluateCommandTests {
    /// Quotes as `fetch --from -` reads them, `seconds` before now.
    static func quotes(_ rows: [(String, Double, Int)]) -> String {
        let now = Int(Date().timeIntervalSince1970)
        return rows.map { "\($0.0),\($0.1),\(now - $0.2)\n" }.joined()
    }

    @Test func quietOnSuccessJSONForScriptsAndHistoryShowsPendingDeliveries() throws {
        let sandbox = try Sandbox()
        try sandbox.run(["fetch", "--from", "-"], stdin: Self.quotes([("AAPL", 190, 300)]))
        try sandbox.run(["alert", "add", "AAPL", "--crosses-above", "200"])
        try sandbox.run(["fetch", "--from", "-"], stdin: Self.quotes([("AAPL", 199, 200), ("AAPL", 201.35, 100)]))

        let quiet = try sandbox.run(["evaluate"])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet.stderr)")
        #expect(try sandbox.count("notifications") == 1)
        #expect(try sandbox.count("deliveries") == 1)

        try sandbox.run(["fetch", "--from", "-"], stdin: Self.quotes([("AAPL", 195, 50), ("AAPL", 205, 10)]))
        let json = try sandbox.run(["evaluate", "--json"])
        #expect(json.status == 0)
        let report = try #require(try json.json() as? [String: Any])
        #expect(report["evaluated"] as? Int == 1)
        #expect((report["insufficient_history"] as? [Any])?.isEmpty == true)
        let notification = try #require((report["notifications"] as? [[String: Any]])?.first)
        #expect(Set(notification.keys) == ["id", "alert_id", "user", "symbol", "price", "observed_at", "message", "channels"])
        #expect(notification["message"] as? String == "AAPL crossed above 200.00 at 205.00")
        #expect(notification["channels"] as? [String] == ["stdout"])
        #expect(notification["user"] as? String == "default")

        let history = try #require(try sandbox.run(["history", "--json"]).json() as? [[String: Any]])
        #expect(history.count == 2)
        let deliveries = try #require(history.first?["deliveries"] as? [[String: Any]])
        #expect(deliveries.map { $0["status"] as? String } == ["pending"])
        let table = try sandbox.run(["history"])
        #expect(table.stdout.contains("AAPL crossed above 200.00 at 201.35") && table.stdout.contains("stdout:pending"))

        let verbose = try sandbox.run(["evaluate", "-v"])
        #expect(verbose.stdout == "evaluated 0 alerts, 0 notifications\n")
    }

    /// Overlapping cron runs: every evaluate started at once over the same database, and
    /// each (alert, quote) is notified exactly once between them.
    @Test func concurrentEvaluatesCreateEachNotificationExactlyOnce() throws {
        let sandbox = try Sandbox()
        let symbols = (0..<20).map { "S\($0)" }
        try sandbox.run(["fetch", "--from", "-"], stdin: Self.quotes(symbols.map { ($0, 100, 600) }))
        // 2,000 alerts that all fire on every quote, so a duplicate would show.
        let alerts = (0..<2000).map { i in
            #"{"symbol":"\#(symbols[i % symbols.count])","condition":{"kind":"above","value":50},"trigger":"every"}"#
        }.joined(separator: "\n")
        #expect(try sandbox.run(["alert", "import", "-"], stdin: alerts).status == 0)
        try sandbox.run(["fetch", "--from", "-"], stdin: Self.quotes(symbols.flatMap { [($0, 101, 300), ($0, 102, 200)] }))

        let runs = try (0..<4).map { _ in try sandbox.start(["evaluate", "--json"]) }
        var reported = 0
        for run in runs {
            let result = try run.finish()
            #expect(result.status == 0, "\(result.stderr)")
            let report = try #require(try result.json() as? [String: Any])
            reported += (report["notifications"] as? [Any])?.count ?? 0
        }
        // Each alert judges the start quote and the two new ones: three firings each.
        #expect(reported == 6000)
        #expect(try sandbox.count("notifications") == 6000)
        #expect(try sandbox.count("deliveries") == 6000)
        let duplicates = try DatabaseQueue(path: sandbox.db).read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT alert_id, observed_at FROM notifications GROUP BY 1, 2 HAVING count(*) > 1)")
        }
        #expect(duplicates == 0)
    }

    /// A `once` alert's end: `evaluate` keeps it aside (migration v23), `alert list` shows
    /// it fired all the same, and `tick` writes it into the alert after notify.
    @Test func aOnceAlertsEndIsShownFiredAndTickWritesItIn() throws {
        let sandbox = try Sandbox()
        try sandbox.run(["fetch", "--from", "-"], stdin: Self.quotes([("AAPL", 190, 300), ("MSFT", 190, 300)]))
        try sandbox.run(["alert", "add", "AAPL", "--above", "200", "--trigger", "once"])
        try sandbox.run(["alert", "add", "MSFT", "--above", "200", "--trigger", "once"])
        try sandbox.run(["fetch", "--from", "-"], stdin: Self.quotes([("AAPL", 201, 200)]))
        #expect(try sandbox.run(["evaluate"]).status == 0)
        func states() throws -> [String] {
            try DatabaseQueue(path: sandbox.db).read { db in
                try String.fetchAll(db, sql: "SELECT state || ' ' || (id IN (SELECT alert_id FROM alert_ends)) FROM alerts ORDER BY id")
            }
        }
        #expect(try states() == ["armed 1", "armed 0"])
        let listed = try #require(try sandbox.run(["alert", "list", "--json"]).json() as? [[String: Any]])
        #expect(listed.map { $0["state"] as? String } == ["fired", "armed"])

        let tick = try sandbox.run(["tick", "--from", "-"], stdin: Self.quotes([("MSFT", 202, 100)]))
        #expect(tick.status == 0, "\(tick.stderr)")
        #expect(try states() == ["fired 0", "fired 0"])
        #expect(try sandbox.count("notifications") == 2)
    }

    @Test func badDatabaseGetsOneLineAndItsExitCode() throws {
        let sandbox = try Sandbox()
        let notADatabase = sandbox.write("junk.db", "this is not SQLite")
        let result = try sandbox.run(["evaluate", "--db", notADatabase])
        #expect(result.status == 69)
        #expect(result.stderr.hasPrefix("stockwatch: error: database \(notADatabase)") && result.stderr.split(separator: "\n").count == 1)
    }
}
