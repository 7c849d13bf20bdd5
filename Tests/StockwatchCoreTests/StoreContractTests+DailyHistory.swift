import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

extension StoreContractTests {
    // `now` is 2026-05-28 16:26:40 in New York (20:26:40 UTC): AAPL's market day is
    // 2026-05-28 and its previous trading day 2026-05-27.

    func daily(_ symbol: String, _ day: String, _ close: Double, source: DailyPrice.Source = .stooq) -> DailyPrice {
        DailyPrice(symbol: symbol, day: day, open: close, high: close, low: close, close: close, volume: 1000, source: source)
    }

    /// The closes of the `count` days before 2026-05-28, weekends left out (gaps), the
    /// oldest first; `close(i)` gives day i's close.
    func days(_ symbol: String, count: Int, close: (Int) -> Double) -> [DailyPrice] {
        (1...count).reversed().compactMap { back -> DailyPrice? in
            let day = MarketDay.adding(-back, to: "2026-05-28")!
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = .gmt
            let (y, m, d) = MarketDay.parts(day)!
            let weekday = utc.component(.weekday, from: utc.date(from: DateComponents(year: y, month: m, day: d))!)
            return weekday == 1 || weekday == 7 ? nil : daily(symbol, day, close(back))
        }
    }

    func fetchWrite(_ quotes: [QuoteJSON], previousCloses: [PreviousClose] = [], at seconds: Int) -> FetchWrite {
        var run = FetchWrite(
            providerStates: [], quotes: quotes, served: Set(quotes.map(\.symbol)), noData: [:], noDataBackoffSeconds: { _ in 300 },
            retentionSeconds: 86_400 * 30, now: at(seconds))
        run.previousCloses = previousCloses
        return run
    }

    /// Since close: the provider's previous close for the quote's market day wins, else the
    /// last stored daily close before that day; exactly the percent fires.
    @Test(arguments: StoreContractTests.backends)
    func sinceCloseCountsFromTheProvidersCloseElseTheLastStoredOne(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.saveDailyPrices(
                [daily("AAPL", "2026-05-26", 90), daily("AAPL", "2026-05-27", 100), daily("MSFT", "2026-05-27", 150)],
                providerStates: [], keepFrom: "2025-01-01")
            _ = try store.recordFetch(fetchWrite([quote("AAPL", 101, at: -120), quote("MSFT", 199, at: -120)], at: -120))
            let ids = try store.addAlerts(
                [spec("AAPL", .riseSinceClose(percent: 3), user: "alice"), spec("MSFT", .fallSinceClose(percent: 3), user: "alice"),
                 spec("NVDA", .riseSinceClose(percent: 1), user: "alice")],
                limitPerUser: nil, now: at(-119)
            ).compactMap(\.id)
            let (rise, fall, none) = (ids[0], ids[1], ids[2])
            _ = try store.addQuotes([quote("NVDA", 50, at: -110)], fetchedAt: at(-110))
            let first = try store.evaluate(now: at(-100), maxAgeSeconds: 3600, prefilter: true)
            #expect(first.notifications.isEmpty)
            #expect(first.insufficientHistory == [none])

            // 102.99 is 2.99% above 100; 103 exactly 3%. MSFT's provider says its previous
            // close was 200: 194 is exactly 3% below it (150, the stored one, would not fire).
            _ = try store.recordFetch(fetchWrite(
                [quote("AAPL", 102.99, at: -60), quote("MSFT", 194.01, at: -60)],
                previousCloses: [PreviousClose(symbol: "MSFT", day: "2026-05-28", close: 200)], at: -60))
            #expect(try store.evaluate(now: at(-59), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            _ = try store.recordFetch(fetchWrite(
                [quote("AAPL", 103, at: 0), quote("MSFT", 194, at: 0)],
                previousCloses: [PreviousClose(symbol: "MSFT", day: "2026-05-28", close: 200)], at: 0))
            let fired = try store.evaluate(now: at(1), maxAgeSeconds: 3600, prefilter: true).notifications
            #expect(fired.map(\.alertId).sorted() == [rise, fall])
            #expect(Set(fired.map(\.message)) == [
                "AAPL rose 3.0% since the previous close 100.00 to 103.00", "MSFT fell 3.0% since the previous close 200.00 to 194.00",
            ])
            #expect(try store.alert(id: rise, ownerID: nil).state == .firing)
        }
    }

    /// New highs and lows: strictly beyond the window's extreme close; a window the history
    /// does not reach back to is insufficient history, not a firing.
    @Test(arguments: StoreContractTests.backends)
    func aNewHighIsStrictlyAboveTheWindowsHighestClose(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            // 30 calendar days back; the 20-day window's highest close is 120 (a Friday, 6
            // days back), its lowest 90 (10 days back); 27 days back (outside) closed at 500.
            let rows = days("AAPL", count: 30) { back in back == 6 ? 120 : back == 10 ? 90 : back == 27 ? 500 : 100 }
            #expect(try store.saveDailyPrices(rows, providerStates: [], keepFrom: "2025-01-01") == ["AAPL": rows.count])
            _ = try store.addQuotes([quote("AAPL", 100, at: -120)], fetchedAt: at(-120))
            let ids = try store.addAlerts(
                [spec("AAPL", .newHigh(windowSeconds: 20 * 86_400), user: "alice"), spec("AAPL", .newLow(windowSeconds: 20 * 86_400), user: "alice"),
                 spec("AAPL", .newHigh(windowSeconds: 364 * 86_400), user: "alice")],
                limitPerUser: nil, now: at(-119)
            ).compactMap(\.id)
            let (high, low, year) = (ids[0], ids[1], ids[2])
            #expect(try store.evaluate(now: at(-100), maxAgeSeconds: 3600, prefilter: true).insufficientHistory == [year])

            _ = try store.addQuotes([quote("AAPL", 120, at: -60)], fetchedAt: at(-60))
            #expect(try store.evaluate(now: at(-59), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            _ = try store.addQuotes([quote("AAPL", 120.01, at: -50)], fetchedAt: at(-50))
            let up = try store.evaluate(now: at(-49), maxAgeSeconds: 3600, prefilter: true).notifications
            #expect(up.map(\.alertId) == [high])
            #expect(up.map(\.message) == ["AAPL made a new 20d high at 120.01 (the highest close was 120.00)"])

            _ = try store.addQuotes([quote("AAPL", 90, at: -40)], fetchedAt: at(-40))
            #expect(try store.evaluate(now: at(-39), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            _ = try store.addQuotes([quote("AAPL", 89.99, at: -30)], fetchedAt: at(-30))
            #expect(try store.evaluate(now: at(-29), maxAgeSeconds: 3600, prefilter: true).notifications.map(\.alertId) == [low])
            // The high re-armed when the price went back under 120.
            #expect(try store.alert(id: high, ownerID: nil).state == .armed)
        }
    }

    /// The daily table: a download replaces a row, a row derived from quotes never
    /// replaces a download; a day's row is derived from its quotes once a later day's quote
    /// comes, on the market's clock across a DST change; retention drops old days.
    @Test(arguments: StoreContractTests.backends)
    func dailyRowsAreDerivedFromQuotesOnTheMarketsClockAndNeverReplaceADownload(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            // 2026-03-08 is the US change to summer time: New York's day starts at 05:00 UTC
            // before it and at 04:00 UTC after it.
            func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
            func q(_ price: Double, _ time: String) -> QuoteJSON { QuoteJSON(symbol: "AAPL", price: price, provider: "stooq", observedAt: utc(time)) }
            _ = try store.addQuotes([q(10, "2026-03-08T04:30:00Z"), q(11, "2026-03-08T05:30:00Z"), q(14, "2026-03-08T20:00:00Z"),
                                     q(9, "2026-03-08T22:00:00Z"), q(12, "2026-03-09T03:30:00Z")], fetchedAt: utc("2026-03-09T03:30:00Z"))
            // 04:30 UTC was still March 7 in New York (EST): that day is over.
            let seventh = DailyPrice(symbol: "AAPL", day: "2026-03-07", open: 10, high: 10, low: 10, close: 10, source: .quotes)
            #expect(try store.dailyPrices(symbol: "AAPL", since: nil, limit: 10) == [seventh])
            // 04:30 UTC on March 9 is 00:30 EDT: March 8 (00:30 EST to 23:30 EDT) is over.
            _ = try store.addQuotes([q(13, "2026-03-09T04:30:00Z")], fetchedAt: utc("2026-03-09T04:30:00Z"))
            let derived = try store.dailyPrices(symbol: "AAPL", since: nil, limit: 10)
            #expect(derived == [DailyPrice(symbol: "AAPL", day: "2026-03-08", open: 11, high: 14, low: 9, close: 12, source: .quotes), seventh])

            // A download replaces the derived row; deriving again leaves the download.
            #expect(try store.saveDailyPrices([daily("AAPL", "2026-03-08", 12.5)], providerStates: [], keepFrom: "2025-01-01") == ["AAPL": 1])
            #expect(try store.saveDailyPrices([daily("AAPL", "2026-03-08", 12.5)], providerStates: [], keepFrom: "2025-01-01") == [:])
            #expect(try store.saveDailyPrices([DailyPrice(symbol: "AAPL", day: "2026-03-08", close: 1, source: .quotes)], providerStates: [], keepFrom: "2025-01-01") == [:])
            #expect(try store.dailyPrices(symbol: nil, since: "2026-03-08", limit: 10) == [daily("AAPL", "2026-03-08", 12.5)])
            #expect(try store.dailyCoverage(symbols: ["AAPL", "MSFT"]) == ["AAPL": DailyCoverage(oldest: "2026-03-07", newest: "2026-03-08", days: 2, downloaded: true)])

            // Retention: days before keepFrom go.
            _ = try store.saveDailyPrices([daily("AAPL", "2024-01-02", 5)], providerStates: [], keepFrom: "2025-01-01")
            #expect(try store.dailyPrices(symbol: "AAPL", since: nil, limit: 10).map(\.day) == ["2026-03-08", "2026-03-07"])
        }
    }
}
