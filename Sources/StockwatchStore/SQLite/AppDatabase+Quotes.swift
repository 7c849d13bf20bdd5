import Foundation
import GRDB
import StockwatchModel

extension AppDatabase: QuoteStore {
    public func recordFetch(_ run: FetchWrite) throws(StockwatchError) -> [QuoteJSON] {
        try write { db in
            for var state in run.providerStates { try state.save(db) }
            try Self.recordBackoff(db, served: run.served, noData: run.noData, backoffSeconds: run.noDataBackoffSeconds, now: run.now)
            let stored = try Self.insert(run.quotes, fetchedAt: run.now, db)
            try Self.savePreviousCloses(run.previousCloses, db)
            if try Self.deriveDailyCloses(stored, db) { try Self.pruneDaily(db, retentionDays: run.dailyRetentionDays, now: run.now) }
            try Self.prune(db, retentionSeconds: run.retentionSeconds, now: run.now)
            try Self.pruneStateChanges(db, now: run.now)
            return stored
        }
    }

    public func addQuotes(_ quotes: [QuoteJSON], fetchedAt: Date) throws(StockwatchError) -> [QuoteJSON] {
        try write { db in
            let stored = try Self.insert(quotes, fetchedAt: fetchedAt, db)
            _ = try Self.deriveDailyCloses(stored, db)
            return stored
        }
    }

    public func watchedSymbols(watchList: [String]) throws(StockwatchError) -> [String] {
        try read { db in
            try String.fetchAll(db, sql: """
                WITH newest AS (SELECT symbol, max(observed_at) AS at FROM quotes GROUP BY symbol),
                watched AS (
                    SELECT DISTINCT user_id, symbol FROM alerts a WHERE \(AlertRecord.isActive("a"))
                    UNION SELECT NULL, value FROM json_each(?)),
                turns AS (
                    SELECT w.symbol, n.at, ROW_NUMBER() OVER (PARTITION BY w.user_id ORDER BY n.at IS NOT NULL, n.at, w.symbol) AS turn
                    FROM watched w LEFT JOIN newest n ON n.symbol = w.symbol)
                SELECT symbol FROM turns GROUP BY symbol ORDER BY min(turn), at IS NOT NULL, at, symbol
                """, arguments: [JSONOutput.encode(watchList)])
        }
    }

    public func symbolsBackingOff(now: Date) throws(StockwatchError) -> [String: Date] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try SymbolFetchStateRecord.filter(Column("retry_at") > now.milliseconds).fetchAll(db)
                .map { ($0.symbol, $0.retryAt) })
        }
    }

    public func quotes(symbol: String?, since: Date?, limit: Int) throws(StockwatchError) -> [QuoteJSON] {
        try read { db in
            var request = QuoteRecord.order(Column("observed_at").desc, Column("id").desc).limit(limit)
            if let symbol { request = request.on(symbol: symbol) }
            if let since { request = request.filter(Column("observed_at") >= since.milliseconds) }
            return try request.fetchAll(db).map(QuoteJSON.init)
        }
    }

    public func latestQuotes(symbols: [String]) throws(StockwatchError) -> [QuoteJSON] {
        try read { db in
            try symbols.compactMap { symbol in
                try QuoteRecord.on(symbol: symbol).order(Column("observed_at").desc).fetchOne(db).map(QuoteJSON.init)
            }
        }
    }

    /// The one quote INSERT: a quote already stored (same symbol and time) is skipped.
    static func insert(_ quotes: [QuoteJSON], fetchedAt: Date, _ db: Database) throws -> [QuoteJSON] {
        let insert = try db.cachedStatement(sql: """
            INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (symbol, observed_at) DO NOTHING
            """)
        var stored: [QuoteJSON] = []
        for quote in quotes {
            try insert.execute(arguments: [quote.symbol, quote.price, quote.provider, quote.observedAt.milliseconds, fetchedAt.milliseconds])
            if db.changesCount > 0 { stored.append(quote) }
        }
        return stored
    }

    static func recordBackoff(_ db: Database, served: Set<String>, noData: [String: String], backoffSeconds: (Int) -> Int64, now: Date) throws {
        let clear = try db.cachedStatement(sql: "DELETE FROM symbol_fetch_state WHERE symbol = ?")
        for symbol in served { try clear.execute(arguments: [symbol]) }
        // A back-off that ran out for a symbol no active alert watches any more is gone.
        try db.execute(sql: """
            DELETE FROM symbol_fetch_state WHERE retry_at <= ?
                AND symbol NOT IN (SELECT symbol FROM alerts a WHERE \(AlertRecord.isActive("a")))
            """, arguments: [now.milliseconds])
        for (symbol, reason) in noData {
            let count = (try SymbolFetchStateRecord.fetchOne(db, key: symbol)?.noDataCount ?? 0) + 1
            let retryAt = Date(milliseconds: now.milliseconds + backoffSeconds(count) * 1000)
            var state = SymbolFetchStateRecord(symbol: symbol, noDataCount: count, retryAt: retryAt, lastReason: reason)
            try state.upsert(db)
        }
    }

    /// Deletes quotes past the retention, but never a symbol's newest quote nor what the
    /// rise/fall windows of active alerts still need (their reference quote included).
    static func prune(_ db: Database, retentionSeconds: Int64, now: Date) throws {
        let cutoff = now.milliseconds - retentionSeconds * 1000
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM quotes WHERE observed_at < ?)", arguments: [cutoff]) == true else { return }
        try db.execute(sql: """
            DELETE FROM quotes AS q
            WHERE q.observed_at < :cutoff
              AND q.id <> (SELECT id FROM quotes n WHERE n.symbol = q.symbol ORDER BY observed_at DESC LIMIT 1)
              AND q.id IS NOT (
                  SELECT r.id FROM quotes r
                  WHERE r.symbol = q.symbol
                    AND r.observed_at <= :now - 1000 * (
                        SELECT max(window_seconds) FROM alerts a
                        WHERE a.symbol = q.symbol AND \(AlertRecord.isActive("a")) AND a.kind IN ('rise', 'fall'))
                  ORDER BY r.observed_at DESC LIMIT 1)
              AND q.observed_at < :now - 1000 * coalesce((
                  SELECT max(window_seconds) FROM alerts a
                  WHERE a.symbol = q.symbol AND \(AlertRecord.isActive("a")) AND a.kind IN ('rise', 'fall')), 0)
            """, arguments: ["cutoff": cutoff, "now": now.milliseconds])
    }
}

extension AppDatabase: ProviderBudgetStore {
    public func providerStates() throws(StockwatchError) -> [ProviderStateRecord] {
        try read { db in try ProviderStateRecord.fetchAll(db) }
    }
}

extension AppDatabase: AccessTokenStore {
    public func accessToken(account: String) throws(StockwatchError) -> (token: String, expiresAt: Date)? {
        try read { db in
            try AccessTokenRecord.fetchOne(db, key: account).map { ($0.token, $0.expiresAt) }
        }
    }

    public func saveAccessToken(account: String, token: String, expiresAt: Date) throws(StockwatchError) {
        try write { db in
            var record = AccessTokenRecord(account: account, token: token, expiresAt: expiresAt)
            try record.upsert(db)
        }
    }

    public func accessTokenExpiries() throws(StockwatchError) -> [String: Date] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try AccessTokenRecord.fetchAll(db).map { ($0.account, $0.expiresAt) })
        }
    }
}

extension QuoteJSON {
    init(_ quote: QuoteRecord) {
        self.init(symbol: quote.symbol, price: quote.price, provider: quote.provider, observedAt: quote.observedAt)
    }
}
