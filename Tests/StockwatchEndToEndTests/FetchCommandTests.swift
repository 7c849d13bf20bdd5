import Foundation
import GRDB
import Testing
import TestSupport

@Suite struct FetchCommandTests {
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
