import Foundation
import Testing

/// Issue 18: a trailing alert through the binary, on both backends: its peak is shown by
/// `alert show` and kept across ticks, and an evaluate killed mid-run loses nothing and
/// doubles nothing.
@Suite(.serialized) struct TrailingAlertTests {
    @Test(arguments: BackendEndToEndTests.backends)
    func aTrailingFallFollowsThePeakAcrossTicksAndAKilledEvaluate(_ backend: String) throws {
        let sandbox = try Sandbox(backend: backend)
        let start = Date().addingTimeInterval(-600)
        func minute(_ n: Int) -> Date { start.addingTimeInterval(TimeInterval(n * 60)) }
        func shown() throws -> [String: Any] {
            try #require(try sandbox.run(["alert", "show", "1", "--json"]).json() as? [String: Any])
        }

        let added = try sandbox.run(["alert", "add", "TSLA", "--trailing-fall", "5%", "--json"])
        #expect(added.status == 0, "\(added.stderr)")
        let alert = try #require(try added.json() as? [String: Any])
        #expect((alert["condition"] as? [String: Any])?["kind"] as? String == "trailing_fall")
        #expect((alert["condition"] as? [String: Any])?["percent"] as? Double == 5)
        #expect(alert.keys.contains("trailing_from") && alert["trailing_from"] is NSNull)

        // Tick 1 starts the trail; tick 2 moves the peak up.
        try sandbox.fetch([("TSLA", 100, minute(0))])
        #expect(try sandbox.run(["evaluate"]).status == 0)
        #expect(try shown()["trailing_from"] as? Double == 100)
        try sandbox.fetch([("TSLA", 110, minute(1)), ("TSLA", 120, minute(2))])
        #expect(try sandbox.run(["evaluate"]).status == 0)
        #expect(try shown()["trailing_from"] as? Double == 120)
        let table = try sandbox.run(["alert", "show", "1"])
        #expect(table.stdout.contains("trailing fall 5% from the peak") && table.stdout.contains("120.00"), "\(table.stdout)")

        // Tick 3: exactly 5% below the peak. The first evaluate is killed as it starts
        // (it commits all or nothing); the next one finishes the work, once.
        try sandbox.fetch([("TSLA", 114, minute(3))])
        let killed = try sandbox.start(["evaluate"])
        kill(killed.process.processIdentifier, SIGKILL)
        _ = try killed.finish()
        #expect(try sandbox.run(["evaluate"]).status == 0)
        let history = try #require(try sandbox.run(["history", "--json"]).json() as? [[String: Any]])
        #expect(history.count == 1)
        #expect(history.first?["message"] as? String == "TSLA fell 5.0% from its peak 120.00 to 114.00")
        #expect(try shown()["state"] as? String == "firing")
        #expect(try shown()["trailing_from"] as? Double == 120)

        // A percent is required, a window refused, a fall of 100% refused: exit 64, nothing added.
        for bad in [["--trailing-fall", "5%", "--within", "1h"], ["--trailing-fall", "100"], ["--trailing-rise", "soon"]] {
            let refused = try sandbox.run(["alert", "add", "TSLA"] + bad)
            #expect(refused.status == 64, "\(bad): \(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        }
        #expect((try sandbox.run(["alert", "list", "--json"]).json() as? [Any])?.count == 1)
    }
}
