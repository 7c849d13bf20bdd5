import Foundation
import GRDB
import StockwatchModel

extension AppDatabase: DailyHistoryStore {
    public func saveDailyPrices(_ rows: [DailyPrice], providerStates: [ProviderStateRecord], keepFrom: String) throws(StockwatchError) -> [String: Int] {
        try write { db in
            for var state in providerStates { try state.save(db) }
            var changed: [String: Int] = [:]
            for row in rows where try Self.saveDaily(row, db) > 0 { changed[row.symbol, default: 0] += 1 }
            try db.execute(sql: "DELETE FROM daily_prices WHERE day < ?", arguments: [keepFrom])
            return changed
        }
    }

    public func dailyPrices(symbol: String?, since day: String?, limit: Int) throws(StockwatchError) -> [DailyPrice] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT symbol, day, open, high, low, close, volume, source FROM daily_prices
                WHERE (?1 IS NULL OR symbol = ?1) AND (?2 IS NULL OR day >= ?2)
                ORDER BY day DESC, symbol LIMIT ?3
                """, arguments: [symbol, day, limit])
            return rows.map { row in
                DailyPrice(
                    symbol: row[0], day: row[1], open: row[2], high: row[3], low: row[4], close: row[5], volume: row[6],
                    source: DailyPrice.Source(rawValue: row[7]) ?? .file)
            }
        }
    }

    public func dailyCoverage(symbols: [String]) throws(StockwatchError) -> [String: DailyCoverage] {
        try read { db in
            var coverage: [String: DailyCoverage] = [:]
            let statement = try db.cachedStatement(sql: "SELECT min(day), max(day), count(*), max(source <> 'quotes') FROM daily_prices WHERE symbol = ?")
            for symbol in symbols {
                guard let row = try Row.fetchOne(statement, arguments: [symbol]), let oldest: String = row[0] else { continue }
                coverage[symbol] = DailyCoverage(oldest: oldest, newest: row[1], days: row[2], downloaded: row[3])
            }
            return coverage
        }
    }

    public func symbolsNeedingHistory() throws(StockwatchError) -> [String: Int64] {
        try read { db in
            var needs: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT a.symbol, max(coalesce(a.window_seconds, 0)) FROM alerts a
                WHERE a.kind IN ('rise_since_close', 'fall_since_close', 'new_high', 'new_low') AND \(AlertRecord.isActive("a"))
                GROUP BY a.symbol
                """) {
                needs[row[0]] = row[1]
            }
            return needs
        }
    }

    /// One row: replaced when it changed, except that a derived row never replaces a
    /// downloaded one. 1 when written.
    static func saveDaily(_ row: DailyPrice, _ db: Database) throws -> Int {
        try db.cachedStatement(sql: """
            INSERT INTO daily_prices (symbol, day, open, high, low, close, volume, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (symbol, day) DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low,
                close = excluded.close, volume = excluded.volume, source = excluded.source
            WHERE (excluded.source <> 'quotes' OR daily_prices.source = 'quotes')
              AND (daily_prices.open IS NOT excluded.open OR daily_prices.high IS NOT excluded.high OR daily_prices.low IS NOT excluded.low
                   OR daily_prices.close <> excluded.close OR daily_prices.volume IS NOT excluded.volume OR daily_prices.source <> excluded.source)
            """).execute(arguments: [row.symbol, row.day, row.open, row.high, row.low, row.close, row.volume, row.source.rawValue])
        return db.changesCount
    }

    /// The providers' previous closes, one row per symbol (the newest day's).
    static func savePreviousCloses(_ closes: [PreviousClose], _ db: Database) throws {
        let save = try db.cachedStatement(sql: """
            INSERT INTO previous_closes (symbol, day, close) VALUES (?, ?, ?)
            ON CONFLICT (symbol) DO UPDATE SET day = excluded.day, close = excluded.close
            WHERE excluded.day >= previous_closes.day AND (previous_closes.day <> excluded.day OR previous_closes.close <> excluded.close)
            """)
        for close in closes { try save.execute(arguments: [close.symbol, close.day, close.close]) }
    }

    /// For each symbol with new quotes: the daily row of its last market day before the
    /// newest one's, from that day's stored quotes, unless a row is stored. A day is over
    /// once a quote of a later day has come, so its last quote is its close. True when a
    /// row was added.
    static func deriveDailyCloses(_ quotes: [QuoteJSON], _ db: Database) throws -> Bool {
        var added = false
        var newest: [String: Date] = [:]
        for quote in quotes { newest[quote.symbol] = max(newest[quote.symbol] ?? quote.observedAt, quote.observedAt) }
        let last = try db.cachedStatement(sql: "SELECT observed_at FROM quotes WHERE symbol = ? AND observed_at < ? ORDER BY observed_at DESC LIMIT 1")
        let stored = try db.cachedStatement(sql: "SELECT 1 FROM daily_prices WHERE symbol = ? AND day = ?")
        let day = try db.cachedStatement(sql: """
            SELECT (SELECT price FROM quotes WHERE symbol = ?1 AND observed_at >= ?2 AND observed_at < ?3 ORDER BY observed_at LIMIT 1),
                   max(price), min(price),
                   (SELECT price FROM quotes WHERE symbol = ?1 AND observed_at >= ?2 AND observed_at < ?3 ORDER BY observed_at DESC LIMIT 1)
            FROM quotes WHERE symbol = ?1 AND observed_at >= ?2 AND observed_at < ?3
            """)
        for (symbol, time) in newest {
            let market = MarketDay(symbol: symbol)
            guard let today = market.start(of: market.day(of: time)),
                  let before = try Int64.fetchOne(last, arguments: [symbol, today.milliseconds])
            else { continue }
            let previous = market.day(of: Date(milliseconds: before))
            guard try Int.fetchOne(stored, arguments: [symbol, previous]) == nil, let start = market.start(of: previous),
                  let row = try Row.fetchOne(day, arguments: [symbol, start.milliseconds, today.milliseconds]),
                  let close: Double = row[3]
            else { continue }
            _ = try saveDaily(DailyPrice(symbol: symbol, day: previous, open: row[0], high: row[1], low: row[2], close: close, source: .quotes), db)
            added = true
        }
        return added
    }

    /// Drops daily rows older than the retention: `retentionDays`, or the longest new high
    /// or low window plus two weeks.
    static func pruneDaily(_ db: Database, retentionDays: Int, now: Date) throws {
        let longest = try Int64.fetchOne(db, sql: "SELECT max(window_seconds) FROM alerts WHERE kind IN ('new_high', 'new_low')") ?? 0
        let keepFrom = MarketDay.keepFrom(now: now, days: retentionDays, longestWindowSeconds: longest)
        try db.execute(sql: "DELETE FROM daily_prices WHERE day < ?", arguments: [keepFrom])
    }

    /// evaluate's lookups (SQLite): the previous close of a market day, and the highest or
    /// lowest close of the days from `from` to before `before` with the symbol's oldest day.
    struct DailyLookups {
        let previous: RawStatement
        let extreme: [Bool: RawStatement]

        init(_ db: Database) throws {
            previous = try RawStatement(db, """
                SELECT coalesce((SELECT close FROM previous_closes WHERE symbol = ?1 AND day = ?2),
                    (SELECT close FROM daily_prices WHERE symbol = ?1 AND day < ?2 ORDER BY day DESC LIMIT 1))
                """)
            extreme = try [true, false].reduce(into: [:]) { statements, high in
                statements[high] = try RawStatement(db, """
                    SELECT (SELECT \(high ? "max" : "min")(close) FROM daily_prices WHERE symbol = ?1 AND day >= ?2 AND day < ?3),
                           (SELECT min(day) FROM daily_prices WHERE symbol = ?1)
                    """)
            }
        }

        func previousClose(_ symbol: String, day: String) throws -> Double? {
            previous.bind(1, symbol)
            previous.bind(2, day)
            defer { previous.reset() }
            return try previous.step() ? previous.optionalDouble(0) : nil
        }

        func extreme(_ symbol: String, high: Bool, from: String, before: String) throws -> (value: Double?, oldest: String?) {
            let statement = extreme[high]!
            statement.bind(1, symbol)
            statement.bind(2, from)
            statement.bind(3, before)
            defer { statement.reset() }
            guard try statement.step() else { return (nil, nil) }
            return (statement.optionalDouble(0), statement.optionalString(1))
        }
    }
}
