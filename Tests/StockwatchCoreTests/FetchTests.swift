import Foundation
import GRDB
import Testing
import TestSupport
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer
@testable import StockwatchStore

/// Fetch against fake providers speaking the documented formats (shared/REFERENCE.md).
@Suite struct FetchTests {
    let now = Date()
    var ts: Int { Int(now.timeIntervalSince1970) - 60 }

    func config(_ store: TemporaryStore, _ providers: [(ProviderName, String)], tweak: (inout ProviderConfig) -> Void = { _ in }) -> Config {
        fakeProviders(store, providers, tweak: tweak)
    }

    func quotes(_ store: TemporaryStore) throws -> [String: Double] {
        try store.database.read { db in
            Dictionary(try QuoteRecord.fetchAll(db).map { ($0.symbol, $0.price) }) { a, _ in a }
        }
    }

    func state(_ store: TemporaryStore, _ provider: String) throws -> ProviderStateRecord? {
        try store.database.read { try ProviderStateRecord.filter(Column("provider") == provider).fetchOne($0) }
    }

    @Test func fixerCrossRatesFromOneRequest() async throws {
        let ts = self.ts
        let fixer = try await FakeHTTPServer { request in
            #expect(request.path == "/latest")
            #expect(request.query("access_key") == "KEY-fixer")
            #expect(request.query("base") == "EUR")
            #expect(request.headers["user-agent"]?.hasPrefix("stockwatch/") == true)
            return .json(#"{"success":true,"timestamp":\#(ts),"base":"EUR","date":"2026-11-25","rates":{"USD":1.2,"JPY":132.0,"GBP":0.88}}"#)
        }
        defer { Task { await fixer.stop() } }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.fixer, fixer.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["EUR/USD", "usd/jpy", "GBP/EUR"], now: now)
        #expect(report.exitStatus == .success)
        #expect(fixer.requests.count == 1)
        let stored = try quotes(store)
        #expect(stored["EUR/USD"] == 1.2)
        #expect(abs(stored["USD/JPY"]! - 110.0) < 1e-9)
        #expect(abs(stored["GBP/EUR"]! - 1 / 0.88) < 1e-9)
        // Running again stores nothing twice.
        let again = try await service.run(symbols: ["EUR/USD"], now: now)
        #expect(again.quotes.isEmpty && again.exitStatus == .success)
        #expect(try store.database.read { try QuoteRecord.fetchCount($0) } == 3)
    }

    @Test func quotaInsideHTTP200FailsOverAndBlocksUntilNextMonth() async throws {
        let ts = self.ts
        let fixer = try await FakeHTTPServer { _ in .json(#"{"success":false,"error":{"code":104,"type":"usage_limit_reached"}}"#) }
        let layer = try await FakeHTTPServer { request in
            #expect(request.path == "/live" && request.query("source") == "USD")
            return .json(#"{"success":true,"terms":"t","privacy":"p","timestamp":\#(ts),"source":"USD","quotes":{"USDEUR":0.8,"USDGBP":0.65}}"#)
        }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.fixer, fixer.baseURL), (.currencylayer, layer.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["EUR/USD"], now: now)
        #expect(report.exitStatus == .success)
        #expect(report.errors.map(\.code) == ["quota"])
        #expect(try quotes(store)["EUR/USD"] == 1.25)
        let blocked = try #require(try state(store, "fixer")?.blockedUntil)
        #expect(abs(blocked.timeIntervalSince(ProviderStateRecord.nextReset(after: now, day: 1))) < 0.002)
        #expect(Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: blocked).day == 1)
        // The next run does not ask fixer at all.
        _ = try await service.run(symbols: ["EUR/USD"], now: now.addingTimeInterval(60))
        #expect(fixer.requests.count == 1 && layer.requests.count == 2)
        await fixer.stop(); await layer.stop()
    }

    @Test(arguments: [
        (#"{"success":false,"error":{"code":101,"type":"invalid_access_key","info":"bad"}}"#, "config"),
        (#"{"success":false,"error":{"code":105,"type":"https_access_restricted"}}"#, "config"),
        (#"{"success":false,"error":{"code":202,"type":"invalid_currency_codes"}}"#, "bad_request"),
        (#"{"success":true,"timestamp":1,"rates":{"USD":1.2"#, "unavailable"),
        ("<html><body>502 Bad Gateway</body></html>", "unavailable"),
        ("", "unavailable"),
    ])
    func fixerErrors(body: String, code: String) async throws {
        let fixer = try await FakeHTTPServer { _ in .json(body) }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.fixer, fixer.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["EUR/USD"], now: now)
        #expect(report.errors.map(\.code) == [code])
        #expect(report.exitStatus == (code == "config" ? .config : .unavailable))
        #expect(!report.errors[0].message.contains("KEY-fixer"))
        #expect(try quotes(store).isEmpty)
        await fixer.stop()
    }

    /// Issue 18: Stooq knows class shares with a dash and London as `.uk`; the README's
    /// examples (BRK.B, VOD.L) are served, and stored under their own names.
    @Test func stooqSymbolFormsForEveryKindOfTicker() async throws {
        let forms = ["AAPL": "aapl.us", "BRK.B": "brk-b.us", "BRK.B.US": "brk-b.us", "VOD.L": "vod.uk", "VOD.UK": "vod.uk",
                     "PKO.WA": "pko", "CDR.PL": "cdr", "SAP.DE": "sap.de", "7203.JP": "7203.jp", "0700.HK": "0700.hk", "EUR/USD": "eurusd"]
        for (symbol, stooq) in forms { #expect(StooqProvider.stooqSymbol(symbol) == stooq, "\(symbol)") }
        #expect(try Symbol.parse("VOD.L").marketTimeZone.identifier == "Europe/London")
        #expect(try Symbol.parse("BRK.B").marketTimeZone.identifier == "America/New_York")
        #expect(try Symbol.parse("PKO.WA").marketTimeZone.identifier == "Europe/Warsaw")
        #expect(try Symbol.parse("EUR/USD").marketTimeZone == .gmt)

        let stamp = Self.warsaw(now.addingTimeInterval(-120))
        let stooq = try await FakeHTTPServer { request in
            #expect(request.uri.contains("s=brk-b.us+vod.uk+pko&"), "\(request.uri)")
            return .respond(status: 200, body: """
                Symbol,Date,Time,Open,High,Low,Close,Volume
                BRK-B.US,\(stamp.0),\(stamp.1),1,1,1,470.25,1
                VOD.UK,\(stamp.0),\(stamp.1),1,1,1,71.02,1
                PKO,\(stamp.0),\(stamp.1),1,1,1,63.5,1

                """)
        }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.stooq, stooq.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["BRK.B", "VOD.L", "PKO.WA"], now: now)
        #expect(try quotes(store) == ["BRK.B": 470.25, "VOD.L": 71.02, "PKO.WA": 63.5])
        #expect(report.errors.isEmpty)
        await stooq.stop()
    }

    @Test func finnhubZeroAnswerIsNoDataAndStooqTakesOver() async throws {
        let ts = self.ts
        let finnhub = try await FakeHTTPServer { request in
            #expect(request.headers["x-finnhub-token"] == "KEY-finnhub")
            #expect(request.query("token") == nil)
            if request.query("symbol") == "AAPL" { return .json(#"{"c":182.63,"d":1.85,"dp":1.02,"h":183.1,"l":180.9,"o":181.2,"pc":180.78,"t":\#(ts)}"#) }
            return .json(#"{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}"#)
        }
        let stamp = Self.warsaw(now.addingTimeInterval(-120))
        let stooq = try await FakeHTTPServer { request in
            #expect(request.uri.contains("s=msft.us+zzzz.us") && request.uri.contains("&h&e=csv"))
            return .respond(status: 200, body: "Symbol,Date,Time,Open,High,Low,Close,Volume\nMSFT.US,\(stamp.0),\(stamp.1),400,410,399,405.5,100\nZZZZ.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D\n")
        }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.finnhub, finnhub.baseURL), (.stooq, stooq.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["AAPL", "MSFT", "ZZZZ"], now: now)
        let stored = try quotes(store)
        #expect(stored == ["AAPL": 182.63, "MSFT": 405.5])
        #expect(report.exitStatus == .temporary)
        #expect(report.errors.filter { $0.code == "no_data" }.map { "\($0.provider!):\($0.symbol!)" } == ["finnhub:MSFT", "finnhub:ZZZZ", "stooq:ZZZZ"])
        await finnhub.stop(); await stooq.stop()
    }

    @Test func rateLimitHonoursRetryAfterAcrossRuns() async throws {
        let ts = self.ts
        let finnhub = try await FakeHTTPServer { _ in .respond(status: 429, headers: [("Retry-After", "120")], body: "{}") }
        let stooq = try await FakeHTTPServer { _ in .respond(status: 500, body: "oops") }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.finnhub, finnhub.baseURL), (.stooq, stooq.baseURL)]), environment: [:])
        let first = try await service.run(symbols: ["AAPL"], now: now)
        #expect(first.exitStatus == .unavailable)
        #expect(first.errors.map(\.code) == ["rate_limited", "unavailable"])
        // Stored to the millisecond.
        #expect(abs(try #require(try state(store, "finnhub")?.blockedUntil).timeIntervalSince(now) - 120) < 0.002)
        #expect(abs(try #require(try state(store, "stooq")?.blockedUntil).timeIntervalSince(now) - 30) < 0.002)
        // Within both backoffs: nothing is asked, the symbol is skipped, not failed.
        let second = try await service.run(symbols: ["AAPL"], now: now.addingTimeInterval(10))
        #expect(second.exitStatus == .success)
        #expect(second.skipped.map(\.provider) == ["finnhub"])
        #expect(finnhub.requests.count == 1 && stooq.requests.count == 1)
        _ = ts
        await finnhub.stop(); await stooq.stop()
    }

    /// No answer at all, or (found by the provider-faults section) the headers and half the
    /// body, then nothing: the client's own deadline ended with the headers, so that second
    /// case hung fetch, and every later tick, for good.
    @Test(arguments: [false, true])
    func hangingProviderTimesOutAndFailsOver(stallInBody: Bool) async throws {
        let ts = self.ts
        let body = #"{"success":true,"timestamp":\#(ts),"base":"EUR","rates":{"USD":2}}"#
        let fixer = try await FakeHTTPServer { _ in stallInBody ? .stallInBody(status: 200, body: body) : .hang }
        let layer = try await FakeHTTPServer { _ in .json(#"{"success":true,"timestamp":\#(ts),"source":"USD","quotes":{"USDEUR":0.5}}"#) }
        let store = try TemporaryStore()
        let service = FetchService(
            database: store.database,
            config: config(store, [(.fixer, fixer.baseURL), (.currencylayer, layer.baseURL)]) { $0.timeoutSeconds = 1 }, environment: [:])
        let started = Date()
        let report = try await service.run(symbols: ["EUR/USD"], now: now)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(report.errors.first?.message == "fixer: no answer within 1 s")
        #expect(report.exitStatus == .success)
        #expect(try quotes(store)["EUR/USD"] == 2)
        await fixer.stop(); await layer.stop()
    }

    /// Rates in another base than asked would be stored as wrong prices.
    @Test func answerInAnotherBaseIsRefusedAndFailsOver() async throws {
        let ts = self.ts
        let fixer = try await FakeHTTPServer { _ in .json(#"{"success":true,"timestamp":\#(ts),"base":"USD","rates":{"GBP":0.8,"USD":1}}"#) }
        let layer = try await FakeHTTPServer { _ in .json(#"{"success":true,"timestamp":\#(ts),"source":"USD","quotes":{"USDEUR":0.5}}"#) }
        let store = try TemporaryStore()
        let service = FetchService(
            database: store.database, config: config(store, [(.fixer, fixer.baseURL), (.currencylayer, layer.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["EUR/USD"], now: now)
        #expect(report.errors.first?.message == "fixer: answered with base USD, not the EUR asked for")
        #expect(try quotes(store)["EUR/USD"] == 2)
        await fixer.stop(); await layer.stop()
    }

    @Test func invalidBaseCurrencyIsAConfigError() async throws {
        let fixer = try await FakeHTTPServer { _ in .json(#"{"success":false,"error":{"code":201,"type":"invalid_base_currency"}}"#) }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.fixer, fixer.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["EUR/USD"], now: now)
        #expect(report.exitStatus == .config)
        #expect(report.errors.first?.message.hasSuffix("the base currency EUR is not valid; check base in [providers.fixer]") == true)
        await fixer.stop()
    }

    @Test(arguments: [("0", "not a positive"), ("-3.5", "not a positive"), ("1e400", "not a positive")])
    func invalidPricesAreNeverStored(price: String, reason: String) async throws {
        let ts = self.ts
        let finnhub = try await FakeHTTPServer { _ in .json(#"{"c":\#(price),"t":\#(ts)}"#) }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.finnhub, finnhub.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["AAPL"], now: now)
        #expect(try quotes(store).isEmpty)
        #expect(report.exitStatus != .success)
        await finnhub.stop()
    }

    @Test func futureAndStaleTimestampsAreRejected() async throws {
        let future = Int(now.timeIntervalSince1970) + 3_600, stale = Int(now.timeIntervalSince1970) - 3 * 86_400
        let finnhub = try await FakeHTTPServer { request in
            .json(#"{"c":10,"t":\#(request.query("symbol") == "AAPL" ? future : stale)}"#)
        }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.finnhub, finnhub.baseURL)]), environment: [:])
        let report = try await service.run(symbols: ["AAPL", "MSFT"], now: now)
        #expect(try quotes(store).isEmpty)
        #expect(report.errors.map(\.code) == ["invalid_quote", "invalid_quote"])
        #expect(report.errors[0].message.contains("future") && report.errors[1].message.contains("max_age"))
        await finnhub.stop()
    }

    @Test func minIntervalSkipsWithoutAsking() async throws {
        let ts = self.ts
        let fixer = try await FakeHTTPServer { _ in .json(#"{"success":true,"timestamp":\#(ts),"rates":{"USD":1.1}}"#) }
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: config(store, [(.fixer, fixer.baseURL)]) { $0.minIntervalSeconds = 8 * 3_600 }, environment: [:])
        #expect(try await service.run(symbols: ["EUR/USD"], now: now).quotes.count == 1)
        let second = try await service.run(symbols: ["EUR/USD"], now: now.addingTimeInterval(3_600))
        #expect(second.exitStatus == .success)
        #expect(second.skipped.first?.reason.hasPrefix("min_interval") == true)
        #expect(fixer.requests.count == 1)
        _ = try await service.run(symbols: ["EUR/USD"], now: now.addingTimeInterval(8 * 3_600 + 1))
        #expect(fixer.requests.count == 2)
        await fixer.stop()
    }

    @Test func missingProviderOrKeyIsAConfigError() async throws {
        let store = try TemporaryStore()
        let none = try await FetchService(database: store.database, config: Config(), environment: [:]).run(symbols: ["AAPL"], now: now)
        #expect(none.exitStatus == .config)
        #expect(none.errors.first?.message.contains("no provider configured for stocks") == true)
        var config = Config()
        config.providers["finnhub"] = ProviderConfig(name: .finnhub)
        let noKey = try await FetchService(database: store.database, config: config, environment: [:]).run(symbols: ["AAPL"], now: now)
        #expect(noKey.exitStatus == .config)
    }

    @Test func watchedSymbolsComeFromActiveAlertsAndWatchList() throws {
        let store = try TemporaryStore()
        var config = Config()
        config.watch = ["gbp/usd"]
        let alerts = AlertService(database: store.database, config: config)
        for (symbol, state) in [("AAPL", "armed"), ("MSFT", "paused"), ("EUR/USD", "firing"), ("IBM", "fired")] {
            var input = AlertInput(symbol: symbol)
            input.above = "1"
            let id = try alerts.add(input).id!
            try store.database.write { db in try db.execute(sql: "UPDATE alerts SET state = ? WHERE id = ?", arguments: [state, id]) }
        }
        let symbols = try FetchService(database: store.database, config: config, environment: [:]).watchedSymbols().map(\.text)
        #expect(Set(symbols) == ["AAPL", "EUR/USD", "GBP/USD"])
    }

    @Test func fileInputIsAllOrNothing() throws {
        let store = try TemporaryStore()
        let service = FetchService(database: store.database, config: Config(), environment: [:])
        let t = Int(now.timeIntervalSince1970) - 30
        let good = "symbol,price,time\nAAPL,201.5,\(t)\n{\"symbol\":\"eur/usd\",\"price\":1.08,\"time\":\"\(ISO8601DateFormatter().string(from: now))\"}\n"
        #expect(try service.ingest(Data(good.utf8), source: "feed.csv", now: now).quotes.count == 2)
        #expect(try quotes(store) == ["AAPL": 201.5, "EUR/USD": 1.08])
        for (bad, line) in [("MSFT,1,\(t)\nMSFT,0,\(t)\n", 2), ("MSFT,1,\(t)\nMSFT,nan,\(t)\n", 2), ("MSFT,1\n", 1), ("MSFT,1,\(t + 7200)\n", 1), ("\n{\"symbol\":\"X\"}\n", 2)] {
            let error = expectError { _ = try service.ingest(Data(bad.utf8), source: "feed.csv", now: now) }
            #expect(error?.exitStatus == .dataError)
            #expect(error?.message.hasPrefix("feed.csv: line \(line): ") == true, "\(String(describing: error))")
        }
        #expect(try store.database.read { try QuoteRecord.fetchCount($0) } == 2)
    }

    @Test func retentionKeepsNewestAndWhatWindowsNeed() throws {
        let store = try TemporaryStore()
        let day: Int64 = 86_400_000
        let nowMs = now.milliseconds
        try store.database.write { db in
            for (symbol, ageDays) in [("AAPL", 200), ("AAPL", 100), ("AAPL", 1), ("MSFT", 200), ("MSFT", 150), ("IBM", 300)] as [(String, Int64)] {
                try db.execute(sql: "INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at) VALUES (?, 1, 'x', ?, 0)", arguments: [symbol, nowMs - ageDays * day])
            }
        }
        var input = AlertInput(symbol: "MSFT")
        input.rise = "5"
        input.within = "180d"
        _ = try AlertService(database: store.database, config: Config()).add(input)
        try store.database.write { db in try AppDatabase.prune(db, retentionSeconds: 90 * 86_400, now: now) }
        let kept = try store.database.read { db in
            try Row.fetchAll(db, sql: "SELECT symbol, (? - observed_at) / ? AS age FROM quotes ORDER BY symbol, age", arguments: [nowMs, day]).map { "\($0["symbol"] as String):\($0["age"] as Int64)" }
        }
        // AAPL keeps only its recent quote; MSFT keeps its 180-day window's reference (200 d) and newer; IBM its newest.
        #expect(kept == ["AAPL:1", "IBM:300", "MSFT:150", "MSFT:200"])
    }

    static func warsaw(_ date: Date) -> (String, String) {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = StooqProvider.timeZone
        formatter.dateFormat = "yyyy-MM-dd"
        let day = formatter.string(from: date)
        formatter.dateFormat = "HH:mm:ss"
        return (day, formatter.string(from: date))
    }
}
