import Foundation
import Synchronization
import Testing
import TestSupport
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore

/// Issue 18: the daily history (Stooq's daily CSV, a file, Finnhub's previous close) and
/// the rules that read it, as typed on the command line.
@Suite struct DailyHistoryTests {
    let now = Date()

    static let csv = """
        Date,Open,High,Low,Close,Volume
        2026-11-25,100,102,99,101.5,1000
        2026-11-26,N/D,N/D,N/D,N/D,N/D
        2026-11-27,101,103,100.5,102,1200
        2026-11-30,102,104,101,103.25,900

        """

    /// `N/D` (a day without data) is skipped; a holiday or weekend is simply absent.
    @Test func stooqsDailyCSVWithNoDataDaysAndGaps() throws {
        let rows = try DailyHistoryService.parse(Self.csv, symbol: "AAPL", source: .stooq, origin: "test")
        #expect(rows.map(\.day) == ["2026-11-25", "2026-11-27", "2026-11-30"])
        #expect(rows[0] == DailyPrice(symbol: "AAPL", day: "2026-11-25", open: 100, high: 102, low: 99, close: 101.5, volume: 1000, source: .stooq))
        // Currencies have no volume column.
        let fx = try DailyHistoryService.parse("Date,Open,High,Low,Close\n2026-11-25,1.05,1.06,1.04,1.055\n", symbol: "EUR/USD", source: .file, origin: "t")
        #expect(fx.map(\.volume) == [nil])
        // An unknown symbol: a body without rows.
        #expect(try DailyHistoryService.parse("No data\n", symbol: "ZZZZ", source: .stooq, origin: "t").isEmpty)
        #expect(try DailyHistoryService.parse("Brak danych", symbol: "ZZZZ", source: .stooq, origin: "t").isEmpty)
    }

    /// Bad input names the line and what is wrong.
    @Test(arguments: [
        ("Day,Close\n2026-11-25,1\n", "line 1: expected the header Date,Open,High,Low,Close,Volume"),
        ("Date,Close\n2026-11-31,1\n", "line 2: not a date (YYYY-MM-DD): 2026-11-31"),
        ("Date,Close\n2026-11-25,-1\n", "line 2: close is not a positive number: -1"),
        ("Date,Close\n2026-11-25,1\n2026-11-25,2\n", "line 3: 2026-11-25 appears twice"),
        ("Date,Open,High,Low,Close\n2026-11-25,1,1,2,1.5\n", "line 2: low 2.00 is above high 1.00"),
        ("Date,Close\n2026-11-25\n", "line 2: expected 2 fields, found 1"),
    ])
    func malformedDailyCSVNamesTheLine(_ input: String, _ message: String) {
        let error = expectError { _ = try DailyHistoryService.parse(input, symbol: "AAPL", source: .file, origin: "h.csv") }
        #expect(error?.message == "h.csv: \(message)")
    }

    /// One request per symbol in Stooq's form; an unknown symbol is reported; `--days`
    /// keeps the last days only; the budget caps requests per run.
    @Test func backfillAsksStooqPerSymbolWithinItsBudget() async throws {
        let today = MarketDay(zone: .gmt).day(of: now)
        let recent = (1...3).map { MarketDay.adding(-$0, to: today)! }
        let old = MarketDay.adding(-40, to: today)!
        final class Asked: Sendable { let uris = Mutex<[String]>([]) }
        let asked = Asked()
        let stooq = try await FakeHTTPServer { request in
            asked.uris.withLock { $0.append(request.uri) }
            if request.uri.contains("s=zzzz.us") { return .respond(status: 200, body: "No data") }
            return .respond(status: 200, body: "Date,Open,High,Low,Close,Volume\n\(old),1,1,1,1,1\n"
                + recent.reversed().map { "\($0),10,12,9,11,5" }.joined(separator: "\n") + "\n")
        }
        let store = try TemporaryStore()
        let service = DailyHistoryService(database: store.database, config: fakeProviders(store, [(.stooq, stooq.baseURL)]) { $0.maxRequestsPerRun = 2 })
        let report = try await service.backfill(symbols: ["BRK.B", "ZZZZ", "VOD.L"], days: 30, now: now)
        await stooq.stop()
        #expect(asked.uris.withLock { $0 } == ["/q/d/l/?s=brk-b.us&i=d", "/q/d/l/?s=zzzz.us&i=d"])
        #expect(report.symbols.map(\.symbol) == ["BRK.B", "ZZZZ"])
        #expect(report.symbols[0].days == 3)
        #expect(report.symbols[0].oldest == recent.last)
        #expect(report.errors.map(\.message) == ["stooq has no daily history for ZZZZ"])
        #expect(report.skipped.map(\.symbol) == ["VOD.L"])
        #expect(report.exitStatus == .temporary)
        #expect(try store.database.dailyPrices(symbol: "BRK.B", since: nil, limit: 10).map(\.source) == [.stooq, .stooq, .stooq])
    }

    /// A failing Stooq backs off as for quotes, and nothing is stored.
    @Test func backfillFailureBacksStooqOff() async throws {
        let stooq = try await FakeHTTPServer { _ in .respond(status: 503, body: "down") }
        let store = try TemporaryStore()
        let service = DailyHistoryService(database: store.database, config: fakeProviders(store, [(.stooq, stooq.baseURL)]))
        let report = try await service.backfill(symbols: ["AAPL", "MSFT"], now: now)
        await stooq.stop()
        #expect(report.errors.map(\.message) == ["stooq: HTTP 503"])
        #expect(report.exitStatus == .unavailable)
        #expect(try store.database.providerStates().first?.blockedUntil != nil)
        let again = try await service.backfill(symbols: ["AAPL"], now: now)
        #expect(again.skipped.first?.reason.hasPrefix("backing off until") == true)
    }

    /// With no symbols: those of active alerts that need history and have none.
    @Test func backfillWithoutSymbolsTakesThoseWhoseAlertsNeedHistory() throws {
        let store = try TemporaryStore()
        let alerts = AlertService(database: store.database, config: Config())
        var since = AlertInput(symbol: "AAPL")
        (since.rise, since.since) = ("3%", "close")
        _ = try alerts.add(since)
        var high = AlertInput(symbol: "MSFT")
        high.newHigh = "52w"
        let yearHigh = try alerts.add(high)
        var plain = AlertInput(symbol: "NVDA")
        plain.above = "100"
        _ = try alerts.add(plain)
        let service = DailyHistoryService(database: store.database, config: Config())
        #expect(try service.symbolsWithoutHistory() == ["AAPL", "MSFT"])
        _ = try service.ingest(symbol: "MSFT", Data(Self.csv.utf8), source: "h.csv")
        #expect(try service.symbolsWithoutHistory() == ["AAPL"])
        // Four days of history do not reach back over 52 weeks: alert add still warns.
        #expect(try alerts.missingHistory(yearHigh, now: ISO8601DateFormatter().date(from: "2026-12-01T15:00:00Z")!) == "MSFT")
        // A day derived from AAPL's quotes is no history to judge a window by.
        _ = try store.database.saveDailyPrices([DailyPrice(symbol: "AAPL", day: "2026-11-30", close: 1, source: .quotes)], providerStates: [], keepFrom: "2000-01-01")
        #expect(try service.symbolsWithoutHistory() == ["AAPL"])
        #expect(try store.database.symbolsNeedingHistory() == ["AAPL": 0, "MSFT": 364 * 86_400])
    }

    /// Finnhub's `pc` is the previous close of the quote's market day.
    @Test func finnhubsPreviousCloseIsKeptForTheQuotesDay() async throws {
        let ts = Int(now.timeIntervalSince1970) - 60
        let finnhub = try await FakeHTTPServer { _ in .json(#"{"c":103,"d":3,"dp":3,"h":104,"l":99,"o":100,"pc":100,"t":\#(ts)}"#) }
        let store = try TemporaryStore()
        let config = fakeProviders(store, [(.finnhub, finnhub.baseURL)])
        var input = AlertInput(symbol: "AAPL")
        (input.rise, input.since) = ("3", "close")
        let id = try AlertService(database: store.database, config: config).add(input).id!
        _ = try await FetchService(database: store.database, config: config, environment: [:]).run(now: now)
        await finnhub.stop()
        let report = try store.database.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true)
        #expect(report.notifications.map(\.alertId) == [id])
        #expect(report.notifications.first?.message == "AAPL rose 3.0% since the previous close 100.00 to 103.00")
    }

    /// tick: with Stooq configured, the symbols whose alerts need history and have none
    /// get it, a few a run; once stored they are not asked again.
    @Test func tickBackfillsMissingHistoryAFewSymbolsARun() async throws {
        final class Asked: Sendable { let uris = Mutex<[String]>([]) }
        let asked = Asked()
        let today = MarketDay(zone: .gmt).day(of: now)
        let stooq = try await FakeHTTPServer { request in
            asked.uris.withLock { $0.append(request.uri) }
            if request.uri.hasPrefix("/q/d/l/") {
                return .respond(status: 200, body: "Date,Open,High,Low,Close,Volume\n\(MarketDay.adding(-1, to: today)!),1,1,1,1,1\n")
            }
            return .respond(status: 200, body: "Symbol,Date,Time,Open,High,Low,Close,Volume\n")
        }
        let store = try TemporaryStore()
        let config = fakeProviders(store, [(.stooq, stooq.baseURL)])
        let alerts = AlertService(database: store.database, config: config)
        for symbol in ["A", "B", "C", "D", "E"] {
            var input = AlertInput(symbol: symbol)
            (input.fall, input.since) = ("2", "close")
            _ = try alerts.add(input)
        }
        let tick = TickService(database: store.database, config: config, environment: [:], writeLine: { _ in })
        let first = try await tick.run()
        let second = try await tick.run()
        let third = try await tick.run()
        await stooq.stop()
        // In a random order: three, then the other two, then none.
        #expect(first.history?.symbols.count == 3)
        #expect(((first.history?.symbols ?? []) + (second.history?.symbols ?? [])).map(\.symbol).sorted() == ["A", "B", "C", "D", "E"])
        #expect(third.history == nil)
        #expect(asked.uris.withLock { $0 }.filter { $0.hasPrefix("/q/d/l/") }.count == 5)
    }

    /// Import and export carry the new kinds; a record missing its field names what it needs.
    @Test func importTakesTheNewKindsAndNamesWhatIsMissing() throws {
        let store = try TemporaryStore()
        let alerts = AlertService(database: store.database, config: Config())
        let lines = """
            {"symbol":"AAPL","condition":{"kind":"new_high","window_seconds":31449600}}
            {"symbol":"VOD.L","condition":{"kind":"fall_since_close","percent":2}}
            """
        #expect(try alerts.importAlerts(Data(lines.utf8), source: "a.ndjson") == 2)
        let listed = try store.database.alerts(AlertQuery())
        #expect(listed.map(\.condition.kind) == [.newHigh, .fallSinceClose])
        #expect(listed.first?.condition.windowSeconds == 31_449_600)
        let missing = expectError { _ = try alerts.importAlerts(Data(#"{"symbol":"AAPL","condition":{"kind":"new_low","percent":2}}"#.utf8), source: "b.ndjson") }
        #expect(missing?.message.contains("condition new_low needs window_seconds (and no value or percent)") == true, "\(String(describing: missing?.message))")
        let hours = expectError { _ = try alerts.importAlerts(Data(#"{"symbol":"AAPL","condition":{"kind":"new_low","window_seconds":3600}}"#.utf8), source: "c.ndjson") }
        #expect(hours?.message.contains("a new high or low counts whole days") == true, "\(String(describing: hours?.message))")
        #expect(try store.database.alerts(AlertQuery()).count == 2)
    }

    /// The new flags, and what they refuse.
    @Test func sinceCloseAndNewHighFlags() throws {
        func spec(_ configure: (inout AlertInput) -> Void) throws -> AlertSpec {
            var input = AlertInput(symbol: "AAPL")
            configure(&input)
            return try input.spec(config: Config(), now: now)
        }
        #expect(try spec { $0.rise = "3%"; $0.since = "close" }.condition == .riseSinceClose(percent: 3))
        #expect(try spec { $0.fall = "2.5"; $0.since = "close" }.condition == .fallSinceClose(percent: 2.5))
        #expect(try spec { $0.newHigh = "52w" }.condition == .newHigh(windowSeconds: 364 * 86_400))
        #expect(try spec { $0.newLow = "20d" }.condition == .newLow(windowSeconds: 20 * 86_400))
        #expect(Condition.newHigh(windowSeconds: 364 * 86_400).summary == "new 52w high")
        #expect(Condition.newLow(windowSeconds: 20 * 86_400).summary == "new 20d low")
        let refused: [((inout AlertInput) -> Void, String)] = [
            ({ $0.rise = "3"; $0.since = "yesterday" }, "invalid value 'yesterday' for --since: the only reference is close (the previous trading day's close)"),
            ({ $0.above = "3"; $0.since = "close" }, "--since close goes only with --rise or --fall"),
            ({ $0.rise = "3"; $0.since = "close"; $0.within = "1h" }, "give --within or --since close, not both"),
            ({ $0.fall = "100"; $0.since = "close" }, "invalid value '100' for --fall: a price cannot fall 100% or more"),
            ({ $0.newHigh = "4h" }, "invalid value '4h' for --new-high: a window of whole days, such as 20d or 52w"),
            ({ $0.newLow = "20d"; $0.within = "1d" }, "--within goes only with --rise or --fall; --new-low takes its window itself (--new-low 52w)"),
        ]
        for (configure, message) in refused {
            #expect(expectError { _ = try spec(configure) }?.message == message)
        }
    }

    /// Market days on each exchange's clock, and plain calendar arithmetic.
    @Test func marketDaysFollowTheExchangesClock() throws {
        let time = ISO8601DateFormatter().date(from: "2026-07-01T23:30:00Z")!
        #expect(MarketDay(symbol: "AAPL").day(of: time) == "2026-07-01")  // 19:30 EDT
        #expect(MarketDay(symbol: "VOD.L").day(of: time) == "2026-07-02")  // 00:30 BST
        #expect(MarketDay(symbol: "PKO.WA").day(of: time) == "2026-07-02")
        #expect(MarketDay(symbol: "EUR/USD").day(of: time) == "2026-07-01")
        #expect(MarketDay(symbol: "VOD.L").start(of: "2026-07-02") == ISO8601DateFormatter().date(from: "2026-07-01T23:00:00Z"))
        #expect(MarketDay.adding(-364, to: "2026-05-28") == "2025-05-29")
        #expect(MarketDay.adding(1, to: "2028-02-28") == "2028-02-29")
        #expect(MarketDay.parts("2026-02-29") == nil)
        #expect(MarketDay.parts("2026-2-1") == nil)
        for odd in ["2024-1-011", "2024-001-1", "+202-01-01", "2024-01-1a"] { #expect(MarketDay.parts(odd) == nil, "\(odd)") }
        #expect(MarketDay.reaches(oldest: "2025-05-29", windowSeconds: 364 * 86_400, before: "2026-05-28"))
        #expect(MarketDay.reaches(oldest: "2025-06-04", windowSeconds: 364 * 86_400, before: "2026-05-28"))
        #expect(!MarketDay.reaches(oldest: "2025-06-05", windowSeconds: 364 * 86_400, before: "2026-05-28"))
    }
}
