import Foundation
import Testing

/// Issue 18: daily history and the rules that read it, through the binary on both
/// backends: `fetch --history --from`, `history --prices --daily`, `--rise --since close`
/// and `--new-high`, and what they refuse.
@Suite(.serialized) struct DailyHistoryCommandTests {
    @Test(arguments: BackendEndToEndTests.backends)
    func sinceCloseAndNewHighJudgeAgainstTheDailyHistory(_ backend: String) throws {
        let sandbox = try Sandbox(backend: backend)
        let now = Date()
        func day(_ back: Int) -> String {
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = TimeZone(identifier: "America/New_York")!
            let c = utc.dateComponents([.year, .month, .day], from: utc.date(byAdding: .day, value: -back, to: now)!)
            return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
        }
        // 30 days of closes at 100, the highest 120 five days ago, yesterday's close 100.
        let csv = "Date,Open,High,Low,Close,Volume\n" + (1...30).reversed().map { back in
            "\(day(back)),100,121,99,\(back == 5 ? "120" : "100"),1000"
        }.joined(separator: "\n") + "\n"
        let stored = try sandbox.run(["fetch", "--history", "AAPL", "--from", "-", "--json"], stdin: csv)
        #expect(stored.status == 0, "\(stored.stderr)")
        let report = try #require(try stored.json() as? [String: Any])
        let entry = try #require((report["symbols"] as? [[String: Any]])?.first)
        #expect(entry["days"] as? Int == 30 && entry["stored"] as? Int == 30 && entry["newest"] as? String == day(1))

        let daily = try #require(try sandbox.run(["history", "--prices", "--daily", "--symbol", "AAPL", "--limit", "2", "--json"]).json() as? [[String: Any]])
        #expect(daily.map { $0["day"] as? String } == [day(1), day(2)])
        #expect(Set(daily[0].keys) == ["symbol", "day", "open", "high", "low", "close", "volume", "source"])
        #expect(daily[0]["source"] as? String == "file")
        let table = try sandbox.run(["history", "--prices", "--daily", "--limit", "1"])
        #expect(table.stdout.hasPrefix("SYMBOL") && table.stdout.contains(day(1)), "\(table.stdout)")

        #expect(try sandbox.run(["alert", "add", "AAPL", "--rise", "3%", "--since", "close"]).status == 0)
        #expect(try sandbox.run(["alert", "add", "AAPL", "--new-high", "20d"]).status == 0)
        let shown = try #require(try sandbox.run(["alert", "show", "2", "--json"]).json() as? [String: Any])
        #expect((shown["condition"] as? [String: Any])?["kind"] as? String == "new_high")
        #expect((shown["condition"] as? [String: Any])?["window_seconds"] as? Int == 20 * 86_400)

        // 103 is exactly 3% above yesterday's close and no new high; 120.5 is both.
        try sandbox.fetch([("AAPL", 103, now.addingTimeInterval(-120))])
        #expect(try sandbox.run(["evaluate"]).status == 0)
        try sandbox.fetch([("AAPL", 120.5, now.addingTimeInterval(-60))])
        #expect(try sandbox.run(["evaluate"]).status == 0)
        let history = try #require(try sandbox.run(["history", "--json"]).json() as? [[String: Any]])
        #expect(Set(history.compactMap { $0["message"] as? String }) == [
            "AAPL rose 3.0% since the previous close 100.00 to 103.00",
            "AAPL made a new 20d high at 120.50 (the highest close was 120.00)",
        ])

        // A rule that needs history its symbol lacks is added, with a warning that says so.
        let warned = try sandbox.run(["alert", "add", "MSFT", "--new-low", "20d"])
        #expect(warned.status == 0 && warned.stdout == "3\n", "\(warned.stderr)")
        #expect(warned.stderr.hasPrefix("stockwatch: warning: no daily history for MSFT yet"), "\(warned.stderr)")
        let warnedJSON = try sandbox.run(["alert", "add", "MSFT", "--fall", "2", "--since", "close", "--json"])
        let warning = try #require(warnedJSON.stderr.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
        #expect((warning["warning"] as? [String: Any])?["symbols"] as? [String] == ["MSFT"])
        #expect((warning["warning"] as? [String: Any])?["code"] as? String == "no_history")
        #expect(try sandbox.run(["alert", "add", "AAPL", "--fall", "2", "--since", "close"]).stderr.isEmpty)

        // Bad input: one line naming the culprit, its exit code, nothing stored.
        let refusals: [([String], String?, Int32)] = [
            (["fetch", "--history", "AAPL", "--from", "-"], "Date,Close\n2026-13-01,5\n", 65),
            (["fetch", "--history", "AAPL", "MSFT", "--from", "-"], "", 64),
            (["fetch", "--days", "5"], nil, 64),
            (["history", "--daily"], nil, 64),
            (["alert", "add", "AAPL", "--rise", "3", "--since", "monday"], nil, 64),
            (["alert", "add", "AAPL", "--new-low", "36h"], nil, 64),
        ]
        for (arguments, input, status) in refusals {
            let refused = try sandbox.run(arguments, stdin: input)
            #expect(refused.status == status, "\(arguments): \(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").count == 1, "\(arguments): \(refused.stderr)")
        }
        #expect((try sandbox.run(["history", "--prices", "--daily", "--json"]).json() as? [Any])?.count == 30)
        #expect((try sandbox.run(["alert", "list", "--json"]).json() as? [Any])?.count == 5)
    }
}
