import Foundation
import PostgresNIO
import StockwatchModel

extension PostgresStore: QuoteStore {
    public func recordFetch(_ run: FetchWrite) throws(StockwatchError) -> [QuoteJSON] {
        try write { db in
            for state in run.providerStates { try await Self.save(state, db) }
            try await Self.recordBackoff(db, run)
            let stored = try await Self.insert(run.quotes, fetchedAt: run.now, db)
            try await Self.savePreviousCloses(run.previousCloses, db)
            if try await Self.deriveDailyCloses(stored.quotes, db) { try await Self.pruneDaily(db, retentionDays: run.dailyRetentionDays, now: run.now) }
            try await Self.prune(db, retentionSeconds: run.retentionSeconds, now: run.now)
            try await Self.pruneStreamLog(db, now: run.now)
            try await Self.logForStream(db, quotes: stored.ids, now: run.now)
            return stored.quotes
        }
    }

    public func addQuotes(_ quotes: [QuoteJSON], fetchedAt: Date) throws(StockwatchError) -> [QuoteJSON] {
        try write { db in
            let stored = try await Self.insert(quotes, fetchedAt: fetchedAt, db)
            _ = try await Self.deriveDailyCloses(stored.quotes, db)
            try await Self.logForStream(db, quotes: stored.ids, now: fetchedAt)
            return stored.quotes
        }
    }

    public func watchedSymbols(watchList: [String]) throws(StockwatchError) -> [String] {
        try read { db in
            try await db.values("""
                WITH newest AS (SELECT symbol, max(observed_at) AS at FROM quotes GROUP BY symbol),
                watched AS (
                    SELECT DISTINCT user_id, symbol FROM alerts WHERE state IN ('armed', 'firing')
                    UNION SELECT NULL, s FROM unnest(\(watchList)::TEXT[]) AS s),
                turns AS (
                    SELECT w.symbol, n.at,
                        ROW_NUMBER() OVER (PARTITION BY w.user_id ORDER BY n.at IS NOT NULL, n.at, w.symbol COLLATE "C") AS turn
                    FROM watched w LEFT JOIN newest n ON n.symbol = w.symbol)
                SELECT symbol FROM turns GROUP BY symbol ORDER BY min(turn), min(at) IS NOT NULL, min(at), symbol COLLATE "C"
                """, String.self)
        }
    }

    public func symbolsBackingOff(now: Date) throws(StockwatchError) -> [String: Date] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try await db.rows(
                "SELECT symbol, retry_at FROM symbol_fetch_state WHERE retry_at > \(now.milliseconds)", (String, Int64).self
            ).map { ($0.0, Date(milliseconds: $0.1)) })
        }
    }

    public func quotes(symbol: String?, since: Date?, limit: Int) throws(StockwatchError) -> [QuoteJSON] {
        try read { db in
            try await db.rows("""
                SELECT symbol, price, provider, observed_at FROM quotes
                WHERE (\(symbol)::TEXT IS NULL OR symbol = \(symbol)) AND (\(since?.milliseconds)::BIGINT IS NULL OR observed_at >= \(since?.milliseconds))
                ORDER BY observed_at DESC, id DESC LIMIT \(Int64(limit))
                """, (String, Double, String, Int64).self
            ).map { QuoteJSON(symbol: $0.0, price: $0.1, provider: $0.2, observedAt: Date(milliseconds: $0.3)) }
        }
    }

    public func latestQuotes(symbols: [String]) throws(StockwatchError) -> [QuoteJSON] {
        guard !symbols.isEmpty else { return [] }
        let found = try read { db in
            try await db.rows("""
                SELECT DISTINCT ON (symbol) symbol, price, provider, observed_at FROM quotes
                WHERE symbol = ANY(\(symbols)) ORDER BY symbol, observed_at DESC
                """, (String, Double, String, Int64).self
            ).map { QuoteJSON(symbol: $0.0, price: $0.1, provider: $0.2, observedAt: Date(milliseconds: $0.3)) }
        }
        let bySymbol = Dictionary(found.map { ($0.symbol, $0) }, uniquingKeysWith: { first, _ in first })
        return symbols.compactMap { bySymbol[$0] }
    }

    /// One INSERT for the batch: a quote already stored (same symbol and time), or twice
    /// in the batch, is skipped. Ids follow the batch's order.
    static func insert(_ quotes: [QuoteJSON], fetchedAt: Date, _ db: PostgresConnection) async throws -> (quotes: [QuoteJSON], ids: [Int64]) {
        guard !quotes.isEmpty else { return ([], []) }
        let inserted = try await db.rows("""
            INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at)
            SELECT symbol, price, provider, observed_at, \(fetchedAt.milliseconds)
            FROM unnest(\(quotes.map(\.symbol))::TEXT[], \(quotes.map(\.price))::DOUBLE PRECISION[], \(quotes.map(\.provider))::TEXT[],
                        \(quotes.map(\.observedAt.milliseconds))::BIGINT[]) WITH ORDINALITY AS x(symbol, price, provider, observed_at, n)
            ORDER BY n
            ON CONFLICT (symbol, observed_at) DO NOTHING
            RETURNING id, symbol, observed_at
            """, (Int64, String, Int64).self)
        var fresh = Set(inserted.map { QuoteKey(symbol: $0.1, observedAt: $0.2) })
        return (quotes.filter { fresh.remove(QuoteKey(symbol: $0.symbol, observedAt: $0.observedAt.milliseconds)) != nil }, inserted.map(\.0).sorted())
    }

    static func save(_ state: ProviderStateRecord, _ db: PostgresConnection) async throws {
        try await db.execute("""
            INSERT INTO provider_state (provider, last_success_at, last_error_at, last_error, consecutive_failures, blocked_until, blocked_reason)
            VALUES (\(state.provider), \(state.lastSuccessAt?.milliseconds), \(state.lastErrorAt?.milliseconds), \(state.lastError),
                    \(state.consecutiveFailures), \(state.blockedUntil?.milliseconds), \(state.blockedReason))
            ON CONFLICT (provider) DO UPDATE SET last_success_at = excluded.last_success_at, last_error_at = excluded.last_error_at,
                last_error = excluded.last_error, consecutive_failures = excluded.consecutive_failures,
                blocked_until = excluded.blocked_until, blocked_reason = excluded.blocked_reason
            """)
    }

    static func recordBackoff(_ db: PostgresConnection, _ run: FetchWrite) async throws {
        let now = run.now.milliseconds
        if !run.served.isEmpty {
            try await db.execute("DELETE FROM symbol_fetch_state WHERE symbol = ANY(\(Array(run.served)))")
        }
        // A back-off that ran out for a symbol no active alert watches any more is gone.
        try await db.execute("""
            DELETE FROM symbol_fetch_state WHERE retry_at <= \(now)
                AND symbol NOT IN (SELECT symbol FROM alerts WHERE state IN ('armed', 'firing'))
            """)
        guard !run.noData.isEmpty else { return }
        let symbols = run.noData.keys.sorted()
        let counts = Dictionary(uniqueKeysWithValues: try await db.rows(
            "SELECT symbol, no_data_count FROM symbol_fetch_state WHERE symbol = ANY(\(symbols)) FOR UPDATE", (String, Int).self
        ).map { ($0.0, $0.1) })
        let newCounts = symbols.map { (counts[$0] ?? 0) + 1 }
        let retries = newCounts.map { now + run.noDataBackoffSeconds($0) * 1000 }
        try await db.execute("""
            INSERT INTO symbol_fetch_state (symbol, no_data_count, retry_at, last_reason)
            SELECT * FROM unnest(\(symbols)::TEXT[], \(newCounts)::INT[], \(retries)::BIGINT[], \(symbols.map { run.noData[$0]! })::TEXT[])
            ON CONFLICT (symbol) DO UPDATE SET no_data_count = excluded.no_data_count, retry_at = excluded.retry_at, last_reason = excluded.last_reason
            """)
    }

    /// Deletes quotes past the retention, but never a symbol's newest quote nor what the
    /// rise/fall windows of active alerts still need (their reference quote included).
    static func prune(_ db: PostgresConnection, retentionSeconds: Int64, now: Date) async throws {
        let cutoff = now.milliseconds - retentionSeconds * 1000
        let nowMS = now.milliseconds
        guard try await db.value("SELECT EXISTS (SELECT 1 FROM quotes WHERE observed_at < \(cutoff))", Bool.self) == true else { return }
        try await db.execute("""
            WITH windows AS (
                SELECT symbol, max(window_seconds) AS seconds FROM alerts
                WHERE state IN ('armed', 'firing') AND kind IN ('rise', 'fall') GROUP BY symbol)
            DELETE FROM quotes AS q
            WHERE q.observed_at < \(cutoff)
              AND q.id <> (SELECT n.id FROM quotes n WHERE n.symbol = q.symbol ORDER BY n.observed_at DESC LIMIT 1)
              AND q.id IS DISTINCT FROM (
                  SELECT r.id FROM quotes r
                  WHERE r.symbol = q.symbol AND r.observed_at <= \(nowMS) - 1000 * (SELECT w.seconds FROM windows w WHERE w.symbol = q.symbol)
                  ORDER BY r.observed_at DESC LIMIT 1)
              AND q.observed_at < \(nowMS) - 1000 * COALESCE((SELECT w.seconds FROM windows w WHERE w.symbol = q.symbol), 0)
            """)
    }
}

private struct QuoteKey: Hashable {
    let symbol: String
    let observedAt: Int64
}

extension PostgresStore: ProviderBudgetStore {
    public func providerStates() throws(StockwatchError) -> [ProviderStateRecord] {
        try read { db in
            try await db.rows("""
                SELECT provider, last_success_at, last_error_at, last_error, consecutive_failures, blocked_until, blocked_reason FROM provider_state
                """, (String, Int64?, Int64?, String?, Int, Int64?, String?).self
            ).map {
                ProviderStateRecord(
                    provider: $0.0, lastSuccessAt: $0.1.map(Date.init(milliseconds:)), lastErrorAt: $0.2.map(Date.init(milliseconds:)),
                    lastError: $0.3, consecutiveFailures: $0.4, blockedUntil: $0.5.map(Date.init(milliseconds:)), blockedReason: $0.6)
            }
        }
    }
}

extension PostgresStore: AccessTokenStore {
    public func accessToken(account: String) throws(StockwatchError) -> (token: String, expiresAt: Date)? {
        try read { db in
            try await db.row("SELECT token, expires_at FROM access_tokens WHERE account = \(account)", (String, Int64).self)
                .map { (token: $0.0, expiresAt: Date(milliseconds: $0.1)) }
        }
    }

    public func saveAccessToken(account: String, token: String, expiresAt: Date) throws(StockwatchError) {
        try write { db in
            try await db.execute("""
                INSERT INTO access_tokens (account, token, expires_at) VALUES (\(account), \(token), \(expiresAt.milliseconds))
                ON CONFLICT (account) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
                """)
        }
    }

    public func accessTokenExpiries() throws(StockwatchError) -> [String: Date] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try await db.rows("SELECT account, expires_at FROM access_tokens", (String, Int64).self)
                .map { ($0.0, Date(milliseconds: $0.1)) })
        }
    }
}
