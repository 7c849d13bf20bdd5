import Foundation
import Testing
import TestSupport

/// The same commands on both backends: the binary pointed at an SQLite file, then at a
/// PostgreSQL database (when PGHOST is set; `.ci/run` runs the suite under pg_virtualenv).
/// Each run checks its own outputs and the database state the commands report, and the
/// two runs' outputs must be the same document for document (times and secrets aside).
@Suite struct BackendEndToEndTests {
    static let backends = ["sqlite"] + (PostgresCommandTests.available ? ["postgresql"] : [])

    /// One pass through the product as a user and cron would drive it; returns every
    /// command's stdout, normalised, for comparing the backends.
    static func scenario(_ backend: String, observed: Int, receiver: FakeWebhookReceiver, fcm: FakeFCM) throws -> [String] {
        let sandbox = try Sandbox(backend: backend)
        let secret = sandbox.write("config/stockwatch/hook.secret", receiver.secret)
        sandbox.write("config/stockwatch/config.toml", """
            [alerts]
            default_notify = "hook"
            [channels.hook]
            type = "webhook"
            url = "\(receiver.url)"
            secret_file = "\(secret)"
            [channels.phone]
            type = "fcm"
            service_account_file = "firebase.json"
            api_base_url = "\(fcm.baseURL)"
            """)
        try fcm.account.write(to: sandbox.folder + "/config/stockwatch/firebase.json", tokenURI: fcm.tokenURI)
        var transcript: [String] = []
        func run(_ arguments: [String], stdin: String? = nil, expect status: Int32 = 0) throws -> Sandbox.Result {
            let result = try sandbox.run(arguments, stdin: stdin)
            #expect(result.status == status, "\(backend): \(arguments.joined(separator: " ")): \(result.stderr)")
            // notify prints the stdout channel's lines (and --json's report) on stdout and stderr.
            if status == 0, arguments.first != "notify", arguments.first != "tick" { #expect(result.stderr.isEmpty, "\(backend): \(arguments.joined(separator: " ")): \(result.stderr)") }
            transcript.append(arguments.joined(separator: " ") + " -> \(result.status)\n" + normalised(result.stdout) + normalised(result.stderr))
            return result
        }

        _ = try run(["user", "add", "alice", "--json"])
        _ = try run(["user", "add", "bob"])
        _ = try run(["user", "add", "alice"], expect: 65)
        _ = try run(["device", "add", "--user", "alice", "--fcm-token", "tok-alice", "--label", "Pixel", "--json"])
        _ = try run(["alert", "add", "AAPL", "--user", "alice", "--above", "200", "--trigger", "every", "--notify", "hook", "--notify", "phone", "--json"])
        _ = try run(["alert", "add", "MSFT", "--user", "bob", "--crosses-below", "400", "--note", "buy", "--json"])
        _ = try run(["alert", "add", "EURUSD", "--below", "1.05", "--expires", "2h", "--notify", "stdout"])
        _ = try run(["alert", "add", "TSLA", "--user", "nobody", "--above", "1"], expect: 65)
        _ = try run(["alert", "pause", "3"])
        _ = try run(["alert", "resume", "3"])
        _ = try run(["fetch", "--from", "-", "--json"], stdin: """
            AAPL,199.00,\(observed - 60)
            MSFT,410.00,\(observed - 60)
            EURUSD,1.07,\(observed - 60)

            """)
        _ = try run(["evaluate", "--json"])
        _ = try run(["fetch", "--from", "-"], stdin: "AAPL,201.35,\(observed)\nMSFT,399.50,\(observed)\nEURUSD,1.04,\(observed)\n")
        let evaluated = try run(["evaluate", "--json"])
        let report = try #require(try evaluated.json() as? [String: Any])
        #expect((report["notifications"] as? [[String: Any]])?.count == 3, "\(backend)")
        _ = try run(["evaluate", "--json"])  // nothing new: never twice
        let notified = try run(["notify", "--json"])
        let deliveries = (try notified.json() as? [String: Any])?["deliveries"] as? [[String: Any]] ?? []
        #expect(deliveries.count == 4, "\(backend): \(deliveries)")
        #expect(deliveries.allSatisfy { $0["status"] as? String == "sent" }, "\(backend): \(deliveries)")
        _ = try run(["notify", "--json"])
        _ = try run(["history", "--json"])
        _ = try run(["history", "--symbol", "AAPL"])
        _ = try run(["alert", "list", "--json"])
        _ = try run(["alert", "show", "2", "--json"])
        _ = try run(["alert", "remove", "2", "99", "--yes"], expect: 65)
        _ = try run(["alert", "remove", "2", "--yes"])
        _ = try run(["alert", "list", "--user", "bob", "--json"])
        _ = try run(["device", "list", "--json"])
        _ = try run(["user", "list", "--json"])
        _ = try run(["user", "remove", "bob", "--yes"])
        _ = try run(["user", "list"])
        let status = try sandbox.run(["status", "--json"])
        #expect(status.status == 0, "\(backend): \(status.stdout) \(status.stderr)")
        let health = try #require(try status.json() as? [String: Any])
        #expect((health["database"] as? [String: Any])?["path"] as? String == (backend == "sqlite" ? sandbox.db : PostgresCommandTests.Database.redacted(sandbox.db)))
        #expect(((health["database"] as? [String: Any])?["bytes"] as? Int ?? 0) > 0)
        #expect((health["deliveries"] as? [String: Any])?["overdue"] as? Int == 0)

        // tick holds its lock (a file, or an advisory lock) and runs the three steps.
        let tick = try run(["tick", "--from", "-"], stdin: "AAPL,202.00,\(observed + 1)\n")
        #expect(tick.stdout.isEmpty || !tick.stdout.contains("error"))
        return transcript
    }

    /// Times, tokens and ids of secrets differ from run to run; nothing else may.
    static func normalised(_ text: String) -> String {
        var text = text
        for (pattern, replacement) in [
            (#"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"#, "TIME"),
            (#"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?"#, "TIME"),
            (#"sw_[0-9a-f]{64}"#, "TOKEN"),
            (#""token" : "[^"]*""#, #""token" : "TOKEN""#),
            (#""token":"[^"]*""#, #""token":"TOKEN""#),
        ] {
            text = text.replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
        }
        return text
    }

    @Test(arguments: backends)
    func everyCommandWorksTheSame(_ backend: String) async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        let fcm = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        _ = try Self.scenario(backend, observed: Int(Date().timeIntervalSince1970) - 5, receiver: receiver, fcm: fcm)
        #expect(receiver.requestCount >= 2, "\(backend)")
        #expect(receiver.badSignatureCount == 0)
        // The alert that fires every time fires again in the last tick.
        #expect(fcm.messageCount == 2, "\(backend)")
        await receiver.stop()
        await fcm.stop()
    }

    @Test(.enabled(if: PostgresCommandTests.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func postgresqlPrintsWhatSQLitePrints() async throws {
        let observed = Int(Date().timeIntervalSince1970) - 5
        var transcripts: [[String]] = []
        for backend in ["sqlite", "postgresql"] {
            let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
            let fcm = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
            transcripts.append(try Self.scenario(backend, observed: observed, receiver: receiver, fcm: fcm))
            await receiver.stop()
            await fcm.stop()
        }
        #expect(transcripts[0].count == transcripts[1].count)
        for (sqlite, postgres) in zip(transcripts[0], transcripts[1]) {
            #expect(sqlite == postgres)
        }
    }

    /// A second tick is refused (75) while one holds the lock, on PostgreSQL an advisory
    /// lock held by another session.
    @Test(.enabled(if: PostgresCommandTests.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func aSecondTickOnPostgreSQLExits75WhileTheFirstHoldsTheLock() async throws {
        let sandbox = try Sandbox(backend: "postgresql")
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        holder.arguments = ["-X", "-q", "-d", sandbox.postgres!.name, "-c", "SELECT pg_advisory_lock(\(Self.lockKey("tick-lock"))), pg_sleep(30)"]
        holder.environment = PostgresCommandTests.server.merging(["PATH": "/usr/bin:/bin"]) { $1 }
        holder.standardOutput = FileHandle.nullDevice
        try holder.run()
        defer { holder.terminate(); holder.waitUntilExit() }
        var refused = try sandbox.run(["tick"])
        // Wait for psql to take the lock (it connects first).
        let deadline = Date().addingTimeInterval(10)
        while refused.status == 0, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            refused = try sandbox.run(["tick"])
        }
        #expect(refused.status == 75)
        #expect(refused.stderr.hasPrefix("stockwatch: error: another tick is still running"), "\(refused.stderr)")
        holder.terminate()
        holder.waitUntilExit()
        // The server ends the lock with the session.
        var later = try sandbox.run(["tick"])
        let until = Date().addingTimeInterval(10)
        while later.status == 75, Date() < until {
            try await Task.sleep(for: .milliseconds(50))
            later = try sandbox.run(["tick"])
        }
        #expect(later.status == 0, "\(later.stderr)")
    }

    /// `db copy` SQLite → PostgreSQL → SQLite: the same alerts and history at every stop,
    /// ids and counters kept (a removed user's id is not handed out again), a target
    /// that holds anything refused, and the counts in the report.
    @Test(.enabled(if: PostgresCommandTests.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func dbCopyRoundTripKeepsEverythingAndTheIdCounters() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        let fcm = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        defer { Task { await receiver.stop(); await fcm.stop() } }
        let sandbox = try Sandbox()
        let secret = sandbox.write("config/stockwatch/hook.secret", receiver.secret)
        sandbox.write("config/stockwatch/config.toml", """
            [channels.hook]
            type = "webhook"
            url = "\(receiver.url)"
            secret_file = "\(secret)"
            """)
        // Both quotes on one market day: across New York's midnight, fetch would also
        // derive a daily row for the day before (this test once ran at 00:00 there).
        var observed = Int(Date().timeIntervalSince1970) - 5
        var newYork = Calendar(identifier: .gregorian)
        newYork.timeZone = TimeZone(identifier: "America/New_York")!
        if !newYork.isDate(Date(timeIntervalSince1970: TimeInterval(observed - 60)), inSameDayAs: Date(timeIntervalSince1970: TimeInterval(observed))) {
            observed -= 120
        }
        for arguments in [
            ["user", "add", "alice"], ["user", "add", "bob"], ["user", "add", "carol"],
            ["alert", "add", "AAPL", "--user", "alice", "--above", "200", "--trigger", "every", "--notify", "hook"],
            ["alert", "add", "MSFT", "--user", "bob", "--below", "10", "--notify", "hook"],
            // Its running peak (201 after evaluate) is a row of alert_trails, copied too.
            ["alert", "add", "AAPL", "--user", "alice", "--trailing-fall", "5%", "--notify", "hook"],
            ["device", "add", "--user", "alice", "--fcm-token", "tok-a"],
        ] {
            #expect(try sandbox.run(arguments).status == 0, "\(arguments)")
        }
        #expect(try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,199,\(observed - 60)\nAAPL,201,\(observed)\n").status == 0)
        // Daily history (issue 18): its days and N/D-free rows copied as they are.
        #expect(try sandbox.run(["fetch", "--history", "AAPL", "--from", "-"], stdin: "Date,Open,High,Low,Close,Volume\n2026-11-30,189,191,188,190,5000\n2026-12-01,N/D,N/D,N/D,195.5,N/D\n").status == 0)
        #expect(try sandbox.run(["evaluate"]).status == 0)
        #expect(try sandbox.run(["notify"]).status == 0)
        #expect(try sandbox.run(["user", "remove", "carol", "--yes"]).status == 0)
        let daily = try sandbox.run(["history", "--prices", "--daily", "--json"]).stdout
        #expect(daily.contains("\"close\":195.5,\"day\":\"2026-12-01\",\"high\":null"), "\(daily)")
        #expect(try sandbox.run(["alert", "remove", "2", "--yes"]).status == 0)
        // Not judged yet when copied: it judges its start quote (201) on each copy.
        #expect(try sandbox.run(["alert", "add", "AAPL", "--user", "bob", "--above", "200", "--notify", "hook"]).status == 0)
        let alerts = try sandbox.run(["alert", "list", "--json"]).stdout
        let history = try sandbox.run(["history", "--json"]).stdout
        #expect(history.contains("\"status\":\"sent\""))

        let postgres = try PostgresCommandTests.Database()
        #expect(try sandbox.run(["db", "migrate", "--db", postgres.url], extraEnvironment: PostgresCommandTests.server).status == 0)
        let copied = try sandbox.run(["db", "copy", "--from", sandbox.db, "--to", postgres.url, "--json"], extraEnvironment: PostgresCommandTests.server)
        #expect(copied.status == 0, "\(copied.stderr)")
        let report = try #require(try copied.json() as? [String: Any])
        let tables = try #require(report["tables"] as? [[String: Any]])
        #expect(tables.count == 14)
        #expect(tables.first { $0["name"] as? String == "alert_trails" }?["rows"] as? Int == 1)
        #expect(tables.first { $0["name"] as? String == "daily_prices" }?["rows"] as? Int == 2)
        let users = try #require(tables.first { $0["name"] as? String == "users" })
        #expect(users["rows"] as? Int == 2 && users["last_id"] as? Int == 3)  // alice and bob; carol's 3 was the last handed out
        #expect(tables.first { $0["name"] as? String == "alerts" }?["last_id"] as? Int == 4)
        #expect(alerts.contains("\"trailing_from\":201,"), "\(alerts)")

        let onPostgres = PostgresCommandTests.server.merging(["STOCKWATCH_DB": postgres.url]) { $1 }
        #expect(try sandbox.run(["alert", "list", "--json"], extraEnvironment: onPostgres).stdout == alerts)
        #expect(try sandbox.run(["history", "--json"], extraEnvironment: onPostgres).stdout == history)
        #expect(try sandbox.run(["history", "--prices", "--daily", "--json"], extraEnvironment: onPostgres).stdout == daily)
        let again = try sandbox.run(["db", "copy", "--from", sandbox.db, "--to", postgres.url], extraEnvironment: PostgresCommandTests.server)
        #expect(again.status == 64)
        #expect(again.stderr.contains("the target is not empty"), "\(again.stderr)")

        // Back to a new SQLite file: the same again, and the counters carried both ways.
        let back = sandbox.folder + "/back.db"
        let returned = try sandbox.run(["db", "copy", "--from", postgres.url, "--to", back], extraEnvironment: PostgresCommandTests.server)
        #expect(returned.status == 0, "\(returned.stderr)")
        #expect(returned.stdout.contains("users"))
        let onBack = ["STOCKWATCH_DB": back]
        #expect(try sandbox.run(["alert", "list", "--json"], extraEnvironment: onBack).stdout == alerts)
        #expect(try sandbox.run(["history", "--json"], extraEnvironment: onBack).stdout == history)
        #expect(try sandbox.run(["history", "--prices", "--daily", "--json"], extraEnvironment: onBack).stdout == daily)
        for environment in [onPostgres, onBack] {
            // A new price: alice's `every` alert follows its watermark on each copy too.
            #expect(try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,202,\(observed + 1)\n", extraEnvironment: environment).status == 0)
            let evaluated = try sandbox.run(["evaluate", "--json"], extraEnvironment: environment)
            let fired = ((try evaluated.json() as? [String: Any])?["notifications"] as? [[String: Any]])?.map { $0["alert_id"] as? Int }
            #expect(fired == [4, 1], "\(evaluated.stdout)")
            let dave = try sandbox.run(["user", "add", "dave", "--json"], extraEnvironment: environment)
            #expect(((try dave.json() as? [String: Any])?["user"] as? [String: Any])?["id"] as? Int == 4, "\(dave.stdout)")
            let alert = try sandbox.run(["alert", "add", "TSLA", "--above", "1", "--notify", "hook", "--json"], extraEnvironment: environment)
            #expect((try alert.json() as? [String: Any])?["id"] as? Int == 5, "\(alert.stdout)")
        }
    }

    /// PostgresStore.lockKey: FNV-1a of "stockwatch:" + the lock's name, as a signed 64-bit key.
    static func lockKey(_ name: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in ("stockwatch:" + name).utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }
}
