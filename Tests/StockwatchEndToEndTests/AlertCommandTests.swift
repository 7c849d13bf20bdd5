import Foundation
import Testing

@Suite struct AlertCommandTests {
    /// `alert list --json` writes a page of alerts at a time (constant memory): past a
    /// page boundary the output is still one JSON array, ascending id, every alert once.
    @Test func aLongListIsOneArrayAcrossPages() throws {
        let sandbox = try Sandbox()
        let count = 5_003
        let lines = (0..<count).map { #"{"symbol":"S\#($0 % 50)","condition":{"kind":"above","value":\#($0 + 1)}}"# }.joined(separator: "\n")
        #expect(try sandbox.run(["alert", "import", "-"], stdin: lines + "\n").status == 0)
        let listed = try sandbox.run(["alert", "list", "--json"])
        #expect(listed.status == 0 && listed.stderr.isEmpty)
        #expect(listed.stdout.hasPrefix("[{") && listed.stdout.hasSuffix("}]\n"))
        let ids = try #require(try listed.json() as? [[String: Any]]).compactMap { $0["id"] as? Int }
        #expect(ids == Array(1...count))
        let filtered = try #require(try sandbox.run(["alert", "list", "--symbol", "s7", "--json"]).json() as? [[String: Any]])
        #expect(filtered.count == 100 && filtered.allSatisfy { $0["symbol"] as? String == "S7" })
        #expect(try sandbox.run(["alert", "list", "--symbol", "S9999", "--json"]).stdout == "[]\n")
    }

    @Test func addListShowPauseResumeRemove() throws {
        let sandbox = try Sandbox()
        let added = try sandbox.run(["alert", "add", "aapl", "--crosses-above", "200", "--cooldown", "1h", "--note", "breakout"])
        #expect(added.status == 0)
        #expect(added.stdout == "1\n")
        #expect(added.stderr.isEmpty)

        let json = try sandbox.run(["alert", "add", "EUR/USD", "--fall", "2%", "--within", "24h", "--trigger", "once", "--expires", "30d", "--json"])
        let alert = try #require(try json.json() as? [String: Any])
        #expect(alert["id"] as? Int == 2)
        #expect(alert["user"] as? String == "default")
        #expect(alert["symbol"] as? String == "EUR/USD")
        let condition = try #require(alert["condition"] as? [String: Any])
        #expect(condition["kind"] as? String == "fall")
        #expect(condition["percent"] as? Double == 2)
        #expect(condition["window_seconds"] as? Int == 86_400)
        #expect(alert["trigger"] as? String == "once")
        #expect(alert["channels"] as? [String] == ["stdout"])
        #expect(alert["state"] as? String == "armed")
        #expect((alert["created_at"] as? String)?.hasSuffix("Z") == true)
        #expect((alert["expires_at"] as? String)?.hasSuffix("Z") == true)
        #expect(alert.keys.contains("last_fired_at") && alert["last_fired_at"] is NSNull)
        #expect(Set(alert.keys).isSuperset(of: ["id", "user", "symbol", "condition", "trigger", "cooldown_seconds", "channels", "state", "created_at", "last_fired_at", "expires_at", "note"]))

        let table = try sandbox.run(["alert", "list"])
        #expect(table.status == 0)
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("ID  USER"))
        #expect(lines[1].contains("crosses above 200.00") && lines[1].contains("breakout"))
        // Columns line up: the symbol of each row starts under the SYMBOL header.
        func column(_ line: Substring, _ text: String) -> Int? { line.range(of: text).map { line.distance(from: line.startIndex, to: $0.lowerBound) } }
        #expect(column(lines[0], "SYMBOL") == column(lines[1], "AAPL"))
        #expect(column(lines[0], "SYMBOL") == column(lines[2], "EUR/USD"))

        #expect(try sandbox.run(["alert", "pause", "1"]).stdout.isEmpty)
        let paused = try sandbox.run(["alert", "list", "--state", "paused", "--json"])
        #expect((try paused.json() as? [[String: Any]])?.map { $0["id"] as? Int } == [1])
        #expect(try sandbox.run(["alert", "resume", "1", "--json"]).stdout.contains(#""state":"armed""#))
        let shown = try sandbox.run(["alert", "show", "1", "--json"])
        #expect((try shown.json() as? [String: Any])?["note"] as? String == "breakout")

        let removed = try sandbox.run(["alert", "remove", "1", "2", "--yes"])
        #expect(removed.status == 0 && removed.stdout.isEmpty && removed.stderr.isEmpty)
        #expect(try sandbox.run(["alert", "list", "--json"]).stdout == "[]\n")
    }

    @Test func newDatabaseIsCreatedPrivate() throws {
        let sandbox = try Sandbox()
        try sandbox.run(["alert", "list"])
        let mode = try FileManager.default.attributesOfItem(atPath: sandbox.db)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // --db wins over STOCKWATCH_DB.
        let other = sandbox.folder + "/other/x.db"
        try sandbox.run(["user", "list", "--db", other])
        #expect(FileManager.default.fileExists(atPath: other))
    }

    /// Commands that only read open the file read-only (a faster start, issue 19): they
    /// answer as before and write nothing, not even SQLite's WAL set-up or a checkpoint.
    @Test func readOnlyCommandsLeaveTheDatabaseUntouched() throws {
        let sandbox = try Sandbox()
        #expect(try sandbox.run(["alert", "add", "AAPL", "--above", "200"]).status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: sandbox.db))
        // status: 1, needs attention (AAPL has no quote yet).
        for (command, status) in [(["alert", "list", "--json"], 0), (["alert", "show", "1"], 0), (["history"], 0), (["status"], 1), (["user", "list"], 0), (["device", "list"], 0)] as [([String], Int32)] {
            let result = try sandbox.run(command)
            #expect(result.status == status && result.stderr.isEmpty, "\(command): \(result.status) \(result.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: sandbox.db)) == before, "\(command) changed the database file")
            let wal = try? FileManager.default.attributesOfItem(atPath: sandbox.db + "-wal")[.size] as? Int
            #expect((wal ?? 0) == 0, "\(command) left \(wal ?? 0) bytes in the WAL")
        }
        #expect(try sandbox.run(["alert", "list", "--json"]).stdout.contains(#""symbol":"AAPL""#))
        // A write after them works as before.
        #expect(try sandbox.run(["alert", "pause", "1"]).status == 0)
    }

    @Test func importRoundTripThroughStdin() throws {
        let source = try Sandbox()
        try source.run(["alert", "add", "MSFT", "--below", "300.25", "--trigger", "every"])
        try source.run(["alert", "add", "GBP/JPY", "--rise", "1", "--within", "4h", "--rearm-margin", "0.5%"])
        try source.run(["alert", "pause", "2"])
        let exported = try source.run(["alert", "list", "--json"]).stdout

        let target = try Sandbox()
        let imported = try target.run(["alert", "import", "-", "--json"], stdin: exported)
        #expect(imported.status == 0)
        #expect(imported.stdout == #"{"imported":2}"# + "\n")
        // Same alerts but for creation time; compared as sorted-key JSON.
        let normalise = { (text: String) -> [String] in
            ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]] ?? []).map { alert in
                let kept = alert.filter { $0.key != "created_at" }
                return String(decoding: (try? JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
            }
        }
        #expect(normalise(try target.run(["alert", "list", "--json"]).stdout) == normalise(exported))
    }

    @Test func importReportsBadRecordAndStoresNothing() throws {
        let sandbox = try Sandbox()
        try sandbox.run(["alert", "add", "AAPL", "--above", "1"])
        let before = try sandbox.snapshot()
        let path = sandbox.write("alerts.ndjson", """
            {"symbol":"AAPL","condition":{"kind":"above","value":10}}
            {"symbol":"AAPL","condition":{"kind":"above","value":"ten"}}
            """)
        let result = try sandbox.run(["alert", "import", path])
        #expect(result.status == 65)
        #expect(result.stderr.hasPrefix("stockwatch: error: \(path): line 2: "))
        #expect(try sandbox.snapshot() == before)
        let unreadable = try sandbox.run(["alert", "import", sandbox.folder + "/missing.json"])
        #expect(unreadable.status == 65)
    }
}
