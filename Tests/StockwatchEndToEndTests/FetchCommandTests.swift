import Foundation
import GRDB
import Testing
import TestSupport

@Suite struct FetchCommandTests {
    /// The one rule for a command that did its work and still exits non-zero: each problem
    /// a line on stderr, then under --json one JSON error with the exit status; tick's JSON
    /// names the failed steps too.
    @Test func fetchAndTickThatExit78SayWhyOnStderrAlsoUnderJSON() throws {
        let sandbox = try Sandbox()
        sandbox.write("config/stockwatch/config.toml", "[providers.finnhub]\n")  // no key anywhere
        try sandbox.run(["alert", "add", "AAPL", "--above", "1"])
        for command in [["fetch"], ["tick"]] {
            let text = try sandbox.run(command)
            #expect(text.status == 78, "\(command): \(text.stderr)")
            #expect(text.stderr.hasPrefix("stockwatch: error: ") && text.stderr.contains("finnhub"), "\(command): \(text.stderr)")

            let json = try sandbox.run(command + ["--json"])
            #expect(json.status == 78)
            let lines = json.stderr.split(separator: "\n")
            #expect(lines.first?.hasPrefix("stockwatch: error: ") == true, "\(command): \(json.stderr)")
            let document = try #require(try lines.last.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
            let error = try #require(document["error"] as? [String: Any])
            #expect(error["exit_status"] as? Int == 78)
            #expect(error["code"] as? String == "config")
            #expect((error["message"] as? String)?.contains("finnhub") == true)
            var report = try #require(try json.json() as? [String: Any])
            if command == ["tick"] {
                #expect(Set(report.keys) == ["fetch", "history", "evaluate", "notify", "errors"])
                #expect(report["errors"] as? [Any] != nil)
                report = try #require(report["fetch"] as? [String: Any])
            }
            let fetchErrors = try #require(report["errors"] as? [[String: Any]])
            #expect(fetchErrors.contains { $0["code"] as? String == "config" })
        }
    }

    /// Budgets outlive the process: the second cron run must not spend a request.
    @Test func budgetsPersistAcrossProcesses() async throws {
        let ts = Int(Date().timeIntervalSince1970) - 60
        let fixer = try await FakeHTTPServer { _ in .json(#"{"success":true,"timestamp":\#(ts),"base":"EUR","rates":{"USD":1.25}}"#) }
        let sandbox = try Sandbox()
        let key = sandbox.write("keys/fixer", "KEY\n")
        sandbox.write("config/stockwatch/config.toml", """
            [providers.fixer]
            api_key_file = "\(key)"
            base_url = "\(fixer.baseURL)"
            min_interval = "8h"
            """)
        try sandbox.run(["alert", "add", "EUR/USD", "--above", "2"])

        let first = try sandbox.run(["fetch"])
        #expect(first.status == 0 && first.stdout.isEmpty && first.stderr.isEmpty, "\(first.stderr)")
        let second = try sandbox.run(["fetch", "--json"])
        #expect(second.status == 0)
        let report = try #require(try second.json() as? [String: Any])
        #expect((report["quotes"] as? [Any])?.isEmpty == true)
        let skipped = try #require((report["skipped"] as? [[String: Any]])?.first)
        #expect(skipped["provider"] as? String == "fixer" && (skipped["reason"] as? String)?.hasPrefix("min_interval") == true)
        #expect(fixer.requests.count == 1)

        let prices = try #require(try sandbox.run(["history", "--prices", "--json"]).json() as? [[String: Any]])
        #expect(prices.map { $0["symbol"] as? String } == ["EUR/USD"])
        #expect(prices.first?["price"] as? Double == 1.25)
        await fixer.stop()
    }

    @Test func providerFailureExitCodesAndPipedInput() async throws {
        let finnhub = try await FakeHTTPServer { _ in .respond(status: 503, body: "down") }
        let sandbox = try Sandbox()
        sandbox.write("config/stockwatch/config.toml", "[providers.finnhub]\nbase_url = \"\(finnhub.baseURL)\"\n")
        let failed = try sandbox.run(["fetch", "AAPL"], extraEnvironment: ["STOCKWATCH_FINNHUB_API_KEY": "SECRETTOKEN"])
        #expect(failed.status == 69)
        #expect(failed.stderr.hasPrefix("stockwatch: error: finnhub: HTTP 503"))
        #expect(!failed.stderr.contains("SECRETTOKEN"))
        let noKey = try sandbox.run(["fetch", "AAPL"])
        #expect(noKey.status == 78)

        let now = Int(Date().timeIntervalSince1970)
        let piped = try sandbox.run(["fetch", "--from", "-", "-v"], stdin: "AAPL,190.5,\(now - 10)\nMSFT,410,\(now - 5)\n")
        #expect(piped.status == 0)
        #expect(piped.stdout.split(separator: "\n").count == 2 && piped.stdout.contains("AAPL 190.50 file"))
        let before = try sandbox.snapshot()
        let bad = try sandbox.run(["fetch", "--from", "-"], stdin: "IBM,150,\(now)\nIBM,-1,\(now)\n")
        #expect(bad.status == 65 && bad.stderr == "stockwatch: error: stdin: line 2: price '-1' is not a positive decimal\n")
        #expect(try sandbox.snapshot() == before)
        await finnhub.stop()
    }
}

/// Fetchers on several machines: two fetches at the same moment on one database.
@Suite struct ConcurrentFetchTests {
    /// Each claims a provider before asking it: of two fetches started together against a
    /// slow provider, one asks it for every symbol and the other skips it, so each symbol
    /// is requested once and stored once, on either backend.
    @Test(arguments: BackendEndToEndTests.backends)
    func twoFetchesAtOnceAskAProviderOnce(_ backend: String) async throws {
        let ts = Int(Date().timeIntervalSince1970) - 60
        let finnhub = try await FakeHTTPServer { request in
            .after(seconds: 0.5, .json(#"{"c":\#(request.query("symbol") == "AAPL" ? 10 : 20),"d":0,"dp":0,"h":1,"l":1,"o":1,"pc":1,"t":\#(ts)}"#))
        }
        let sandbox = try Sandbox(backend: backend)
        let key = sandbox.write("keys/finnhub", "KEY\n")
        sandbox.write("config/stockwatch/config.toml", """
            [providers.finnhub]
            api_key_file = "\(key)"
            base_url = "\(finnhub.baseURL)"
            """)
        try sandbox.run(["alert", "add", "AAPL", "--above", "1000"])
        try sandbox.run(["alert", "add", "MSFT", "--above", "1000"])

        let runs = try (0..<2).map { _ in try sandbox.start(["fetch", "--json"]) }
        let results = try runs.map { try $0.finish() }
        #expect(results.allSatisfy { $0.status == 0 }, "\(results.map(\.stderr))")
        let reports = try results.map { try #require(try $0.json() as? [String: Any]) }
        let stored = reports.flatMap { ($0["quotes"] as? [[String: Any]] ?? []).compactMap { $0["symbol"] as? String } }
        #expect(stored.sorted() == ["AAPL", "MSFT"])
        let skipped = reports.flatMap { ($0["skipped"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String } }
        #expect(skipped == ["another fetch is asking finnhub right now", "another fetch is asking finnhub right now"])
        #expect(finnhub.requests.map { $0.query("symbol") ?? "" }.sorted() == ["AAPL", "MSFT"])

        let prices = try #require(try sandbox.run(["history", "--prices", "--json"]).json() as? [[String: Any]])
        #expect(prices.compactMap { $0["symbol"] as? String }.sorted() == ["AAPL", "MSFT"])
        // The claim ended with the run: the next fetch asks again.
        #expect(try sandbox.run(["fetch"]).status == 0)
        #expect(finnhub.requests.count == 4)
        await finnhub.stop()
    }

    /// A claim dies with its process: a fetch killed while it waits on a provider does
    /// not keep the provider from the next fetch, which asks it at once.
    @Test(arguments: BackendEndToEndTests.backends)
    func aKilledFetchLeavesNoClaimBehind(_ backend: String) async throws {
        let ts = Int(Date().timeIntervalSince1970) - 60
        let finnhub = try await FakeHTTPServer { request in
            request.headers["x-finnhub-token"] == "slow" ? .hang : .json(#"{"c":10,"d":0,"dp":0,"h":1,"l":1,"o":1,"pc":1,"t":\#(ts)}"#)
        }
        let sandbox = try Sandbox(backend: backend)
        let slow = sandbox.write("keys/slow", "slow\n"), fast = sandbox.write("keys/fast", "fast\n")
        func configure(_ key: String) {
            sandbox.write("config/stockwatch/config.toml", """
                [providers.finnhub]
                api_key_file = "\(key)"
                base_url = "\(finnhub.baseURL)"
                """)
        }
        configure(slow)
        try sandbox.run(["alert", "add", "AAPL", "--above", "1000"])
        let stuck = try sandbox.start(["fetch"])
        for _ in 0..<500 where finnhub.requests.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(finnhub.requests.count == 1)  // it holds the claim and waits on the provider
        kill(stuck.process.processIdentifier, SIGKILL)
        _ = try stuck.finish()

        configure(fast)
        let next = try sandbox.run(["fetch", "--json"])
        #expect(next.status == 0, "\(next.stderr)")
        let report = try #require(try next.json() as? [String: Any])
        #expect((report["quotes"] as? [[String: Any]])?.compactMap { $0["symbol"] as? String } == ["AAPL"])
        #expect((report["skipped"] as? [Any])?.isEmpty == true)
        await finnhub.stop()
    }
}
