import Foundation
import PostgresNIO
import StockwatchModel

extension PostgresStore: DailyHistoryStore {
    public func saveDailyPrices(_ rows: [DailyPrice], providerStates: [ProviderStateRecord], keepFrom: String) throws(StockwatchError) -> [String: Int] {
        try write { db in
            for state in providerStates { try await Self.save(state, db) }
            let changed = try await Self.saveDaily(rows, db)
            try await db.execute("DELETE FROM daily_prices WHERE day < \(keepFrom)")
            return changed
        }
    }

    public func dailyPrices(symbol: String?, since day: String?, limit: Int) throws(StockwatchError) -> [DailyPrice] {
        try read { db in
            try await db.rows("""
                SELECT symbol, day, open, high, low, close, volume, source FROM daily_prices
                WHERE (\(symbol)::TEXT IS NULL OR symbol = \(symbol)) AND (\(day)::TEXT IS NULL OR day >= \(day))
                ORDER BY day DESC, symbol COLLATE "C" LIMIT \(Int64(limit))
                """, (String, String, Double?, Double?, Double?, Double, Double?, String).self
            ).map { symbol, day, open, high, low, close, volume, source in
                DailyPrice(
                    symbol: symbol, day: day, open: open, high: high, low: low, close: close, volume: volume,
                    source: DailyPrice.Source(rawValue: source) ?? .file)
            }
        }
    }

    public func dailyCoverage(symbols: [String]) throws(StockwatchError) -> [String: DailyCoverage] {
        guard !symbols.isEmpty else { return [:] }
        return try read { db in
            Dictionary(uniqueKeysWithValues: try await db.rows("""
                SELECT symbol, min(day), max(day), count(*)::BIGINT, bool_or(source <> 'quotes') FROM daily_prices WHERE symbol = ANY(\(symbols)) GROUP BY symbol
                """, (String, String, String, Int64, Bool).self
            ).map { ($0.0, DailyCoverage(oldest: $0.1, newest: $0.2, days: Int($0.3), downloaded: $0.4)) })
        }
    }

    public func symbolsNeedingHistory() throws(StockwatchError) -> [String: Int64] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try await db.rows("""
                SELECT symbol, max(coalesce(window_seconds, 0))::BIGINT FROM alerts
                WHERE kind IN ('rise_since_close', 'fall_since_close', 'new_high', 'new_low') AND state IN ('armed', 'firing')
                GROUP BY symbol
                """, (String, Int64).self).map { ($0.0, $0.1) })
        }
    }

    /// One statement for the rows: replaced when changed, except that a derived row never
    /// replaces a downloaded one. -1 stands for an unknown open, high, low or volume
    /// (arrays bind no NULL elements here). Returns how many were written, per symbol.
    static func saveDaily(_ rows: [DailyPrice], _ db: PostgresConnection) async throws -> [String: Int] {
        guard !rows.isEmpty else { return [:] }
        return try await db.values("""
            INSERT INTO daily_prices AS d (symbol, day, open, high, low, close, volume, source)
            SELECT symbol, day, NULLIF(open, -1), NULLIF(high, -1), NULLIF(low, -1), close, NULLIF(volume, -1), source
            FROM unnest(\(rows.map(\.symbol))::TEXT[], \(rows.map(\.day))::TEXT[], \(rows.map { $0.open ?? -1 })::DOUBLE PRECISION[],
                        \(rows.map { $0.high ?? -1 })::DOUBLE PRECISION[], \(rows.map { $0.low ?? -1 })::DOUBLE PRECISION[],
                        \(rows.map(\.close))::DOUBLE PRECISION[], \(rows.map { $0.volume ?? -1 })::DOUBLE PRECISION[],
                        \(rows.map(\.source.rawValue))::TEXT[]) AS x(symbol, day, open, high, low, close, volume, source)
            ON CONFLICT (symbol, day) DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low,
                close = excluded.close, volume = excluded.volume, source = excluded.source
            WHERE (excluded.source <> 'quotes' OR d.source = 'quotes')
              AND (d.open, d.high, d.low, d.close, d.volume, d.source) IS DISTINCT FROM
                  (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.source)
            RETURNING d.symbol
            """, String.self).reduce(into: [:]) { counts, symbol in counts[symbol, default: 0] += 1 }
    }

    /// The providers' previous closes, one row per symbol (the newest day's).
    static func savePreviousCloses(_ closes: [PreviousClose], _ db: PostgresConnection) async throws {
        guard !closes.isEmpty else { return }
        // One per symbol: ON CONFLICT cannot touch a row twice in one statement.
        // On a tie the later one, as on SQLite.
        let newest = Dictionary(closes.map { ($0.symbol, $0) }) { a, b in a.day > b.day ? a : b }.values.sorted { $0.symbol < $1.symbol }
        try await db.execute("""
            INSERT INTO previous_closes AS p (symbol, day, close)
            SELECT * FROM unnest(\(newest.map(\.symbol))::TEXT[], \(newest.map(\.day))::TEXT[], \(newest.map(\.close))::DOUBLE PRECISION[])
            ON CONFLICT (symbol) DO UPDATE SET day = excluded.day, close = excluded.close
            WHERE excluded.day >= p.day AND (p.day, p.close) IS DISTINCT FROM (excluded.day, excluded.close)
            """)
    }

    /// As SQLite's `deriveDailyCloses`, in two statements: each symbol's last quote before
    /// its newest market day, then that day's row from its quotes where none is stored.
    static func deriveDailyCloses(_ quotes: [QuoteJSON], _ db: PostgresConnection) async throws -> Bool {
        var newest: [String: Date] = [:]
        for quote in quotes { newest[quote.symbol] = max(newest[quote.symbol] ?? quote.observedAt, quote.observedAt) }
        guard !newest.isEmpty else { return false }
        var markets: [String: (market: MarketDay, today: Int64)] = [:]
        for (symbol, time) in newest {
            let market = MarketDay(symbol: symbol)
            if let today = market.start(of: market.day(of: time)) { markets[symbol] = (market, today.milliseconds) }
        }
        let symbols = markets.keys.sorted()
        let befores = try await db.rows("""
            SELECT k.symbol, (SELECT q.observed_at FROM quotes q WHERE q.symbol = k.symbol AND q.observed_at < k.today ORDER BY q.observed_at DESC LIMIT 1)
            FROM unnest(\(symbols)::TEXT[], \(symbols.map { markets[$0]!.today })::BIGINT[]) AS k(symbol, today)
            """, (String, Int64?).self)
        var days: (symbols: [String], days: [String], starts: [Int64], stops: [Int64]) = ([], [], [], [])
        for case let (symbol, before?) in befores {
            let (market, today) = markets[symbol]!
            let day = market.day(of: Date(milliseconds: before))
            guard let start = market.start(of: day) else { continue }
            days.symbols.append(symbol)
            days.days.append(day)
            days.starts.append(start.milliseconds)
            days.stops.append(today)
        }
        guard !days.symbols.isEmpty else { return false }
        return try await !db.values("""
            INSERT INTO daily_prices (symbol, day, open, high, low, close, volume, source)
            SELECT k.symbol, k.day,
                (SELECT q.price FROM quotes q WHERE q.symbol = k.symbol AND q.observed_at >= k.start AND q.observed_at < k.stop ORDER BY q.observed_at LIMIT 1),
                (SELECT max(q.price) FROM quotes q WHERE q.symbol = k.symbol AND q.observed_at >= k.start AND q.observed_at < k.stop),
                (SELECT min(q.price) FROM quotes q WHERE q.symbol = k.symbol AND q.observed_at >= k.start AND q.observed_at < k.stop),
                (SELECT q.price FROM quotes q WHERE q.symbol = k.symbol AND q.observed_at >= k.start AND q.observed_at < k.stop ORDER BY q.observed_at DESC LIMIT 1),
                NULL, 'quotes'
            FROM unnest(\(days.symbols)::TEXT[], \(days.days)::TEXT[], \(days.starts)::BIGINT[], \(days.stops)::BIGINT[]) AS k(symbol, day, start, stop)
            WHERE NOT EXISTS (SELECT 1 FROM daily_prices d WHERE d.symbol = k.symbol AND d.day = k.day)
            ON CONFLICT (symbol, day) DO NOTHING
            RETURNING 1
            """, Int.self).isEmpty
    }

    /// As SQLite's `pruneDaily`.
    static func pruneDaily(_ db: PostgresConnection, retentionDays: Int, now: Date) async throws {
        let longest = try await db.value("SELECT max(window_seconds) FROM alerts WHERE kind IN ('new_high', 'new_low')", Int64?.self) ?? nil
        let keepFrom = MarketDay.keepFrom(now: now, days: retentionDays, longestWindowSeconds: longest ?? 0)
        try await db.execute("DELETE FROM daily_prices WHERE day < \(keepFrom)")
    }
}
