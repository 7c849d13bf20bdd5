import Foundation
import PostgresNIO
import StockwatchModel

/// evaluate on PostgreSQL: one transaction, over the symbols of the hash buckets it could
/// lock. The symbols fall into `evaluateBuckets` buckets, each a transaction-scoped
/// advisory lock: an evaluator takes every bucket no other evaluator holds (skipping, not
/// waiting for, the rest) and judges only their symbols. So evaluators on any number of
/// machines never judge a symbol at the same time, and since each commits its watermarks
/// before letting go of its buckets, the next one to take a bucket finds its quotes
/// judged: no quote is judged twice (UNIQUE (alert_id, observed_at) keeps a duplicate out
/// even so). An evaluator killed mid-run commits nothing and frees its buckets with its
/// connection; their quotes wait for the next run.
///
/// Designed for a server a round trip away: a fixed number of statements whatever the
/// number of symbols and alerts. The quotes of every symbol come in one query (`unnest`
/// of the symbols and their start times), every reference price in one more, the
/// candidate seeks (the same conditions as on SQLite, Evaluation/Evaluation.swift) in one
/// with the price ranges bound as arrays, and the writes are one statement per table
/// over arrays: the alerts' new states, the watermarks, the notifications, their deliveries.
extension PostgresStore: EvaluationStore {
    /// The advisory locks' first key ("stkw"); the second is the bucket.
    static let evaluateLockClass: Int32 = 0x7374_6b77
    static let evaluateBuckets = 16
    /// A symbol's bucket, in SQL: the first byte of its SHA-256, so every server and
    /// version agrees.
    static func bucket(of column: String) -> String { "(get_byte(sha256(convert_to(\(column), 'UTF8')), 0) % \(evaluateBuckets))" }

    /// Nothing is kept aside: evaluate writes a `once` alert's end in its row.
    public func foldAlertEnds() throws(StockwatchError) -> Int { 0 }

    /// `detailed`: the count of judged alerts passes every alert of the batch's symbols;
    /// without it only the alerts that have a reference basis are read, and the report
    /// lists no notification.
    public func evaluate(now: Date, maxAgeSeconds: Int64, prefilter: Bool, detailed: Bool) throws(StockwatchError) -> EvaluateReport {
        let (report, started) = try write { db in
            // No JIT for this transaction: the candidate read's estimated cost passes
            // jit_above_cost, and compiling it took longer than running it (100,000 alerts:
            // 554 ms with JIT, 215 ms without). SET LOCAL, not a startup parameter, which
            // a connection pooler might refuse.
            try await db.execute("SET LOCAL jit = off")
            // In a random order, so that evaluators starting together split the buckets.
            let order = Array(0..<Self.evaluateBuckets).shuffled()
            let held = try await db.values("""
                SELECT b FROM unnest(\(order)::INT[]) WITH ORDINALITY AS x(b, n)
                WHERE pg_try_advisory_xact_lock(\(Self.evaluateLockClass), b) ORDER BY n
                """, Int.self)
            var evaluation = Evaluation(now: now.milliseconds, staleBefore: now.milliseconds - maxAgeSeconds * 1000, prefilter: prefilter)
            guard !held.isEmpty else { return (evaluation.report, 0) }
            evaluation.lookupReference = { symbol, _ in
                throw StockwatchError.internal("evaluate needed a reference price of \(symbol) it had not fetched")
            }
            evaluation.lookupDaily = { key in
                throw StockwatchError.internal("evaluate needed a daily reference of \(key.symbol) it had not fetched")
            }
            // Every bucket: no filter (the common case, one evaluator at a time).
            let buckets = held.count == Self.evaluateBuckets ? nil : held
            evaluation.detailed = detailed
            evaluation.derivesLevels = true  // migration v13
            let outcome = try await evaluation.run(db, buckets: buckets)
            evaluation.releaseInBackground()
            return outcome
        }
        // The first evaluate after a bulk import empties alert_starts. Planned on
        // statistics that still counted its rows, the next evaluates' candidate read took
        // 5-7 s instead of 0.5 s at 100,000 alerts, until autovacuum's next round.
        if started >= Self.bulkRows { refreshStatistics(of: ["alert_starts"]) }
        return report
    }
}

extension Evaluation {
    /// `buckets`: only the symbols of these (nil: every symbol). `started`: the new and
    /// resumed alerts it started (their `alert_starts` rows deleted).
    mutating func run(_ db: PostgresConnection, buckets: [Int]?) async throws -> (report: EvaluateReport, started: Int) {
        report.expired = try await db.values(PostgresQuery(
            unsafeSQL: "UPDATE alerts SET state = 'expired' WHERE state IN ('armed', 'firing') AND expires_at <= $1" + Self.inBuckets("symbol", buckets, 2)
                + " RETURNING id",
            binds: Self.binds(now, buckets)), Int64.self
        ).sorted()
        try await loadQuotes(db, buckets: buckets)
        let ranges = priceRanges()
        let batch = ranges.keys.sorted()
        // The reference ranges of every (symbol, basis) of the batch, from one fetch each.
        // Counting, the same pass over the batch's alerts counts the active ones for the
        // report; otherwise only the kinds with a basis are read, from their partial
        // indexes' columns (100,000 alerts, a third of them rise or fall: 33 ms → 17 ms).
        var pairs = Set<ReferencePair>()
        for (symbol, kind, window, active) in batch.isEmpty ? [] : try await db.rows(detailed ? """
            SELECT symbol, kind, window_seconds, count(*) FILTER (WHERE state IN ('armed', 'firing')) FROM alerts
            WHERE symbol = ANY(\(batch)) GROUP BY symbol, kind, window_seconds
            """ : """
            SELECT symbol, kind, window_seconds, 0 FROM alerts
            WHERE symbol = ANY(\(batch)) AND window_seconds IS NOT NULL GROUP BY symbol, kind, window_seconds
            UNION ALL
            SELECT symbol, kind, NULL, 0 FROM alerts
            WHERE symbol = ANY(\(batch)) AND kind IN ('rise_since_close', 'fall_since_close') GROUP BY symbol, kind
            """, (String, String, Int64?, Int).self) {
            report.evaluated += active
            if let basis = Basis(kind: kind, window: window) { pairs.insert(ReferencePair(symbol: symbol, basis: basis)) }
        }
        var keys = Set<ReferenceKey>()
        for pair in pairs {
            for i in freshIndexes(pair.symbol) { keys.insert(ReferenceKey(symbol: pair.symbol, basis: pair.basis, index: i)) }
        }
        try await fetchReferences(keys, db)
        var referenceRanges: [(pair: ReferencePair, range: Range)] = []
        for pair in pairs { referenceRanges.append((pair, try referenceRange(pair.symbol, basis: pair.basis))) }

        try await readCandidates(db, batch: batch.map { ($0, ranges[$0]!) }, references: referenceRanges, buckets: buckets)
        try await fetchReferences(referenceKeysNeeded(), db)
        try judgeAll()
        let started = try await write(db)
        // Nor a partial count: new alerts are counted as they are judged.
        if !detailed { report.evaluated = 0 }
        return (report, started)
    }

    /// ` AND <column's bucket> = ANY($n)`, or nothing for every bucket.
    static func inBuckets(_ column: String, _ buckets: [Int]?, _ parameter: Int) -> String {
        buckets == nil ? "" : " AND \(PostgresStore.bucket(of: column)) = ANY($\(parameter)::INT[])"
    }

    /// `first` if given, then the buckets when there is a filter.
    static func binds(_ first: Int64? = nil, _ buckets: [Int]?) -> PostgresBindings {
        var binds = PostgresBindings()
        if let first { binds.append(first) }
        if let buckets { binds.append(buckets) }
        return binds
    }

    mutating func loadQuotes(_ db: PostgresConnection, buckets: [Int]?) async throws {
        let progress = try await db.rows(PostgresQuery(
            unsafeSQL: "SELECT symbol, observed_at, judged_price FROM evaluation_progress WHERE TRUE" + Self.inBuckets("symbol", buckets, 1),
            binds: Self.binds(nil, buckets)), (String, Int64, Double?).self)
        for (symbol, watermark, judged) in progress { addProgress(symbol, watermark: watermark, judged: judged) }
        let starts = try await db.rows(PostgresQuery(
            unsafeSQL: """
                SELECT a.symbol, min(CASE s.start_at WHEN 0 THEN $1 ELSE s.start_at END)
                FROM alert_starts s JOIN alerts a ON a.id = s.alert_id WHERE a.state IN ('armed', 'firing')
                """ + Self.inBuckets("a.symbol", buckets, 2) + " GROUP BY a.symbol",
            binds: Self.binds(staleBefore, buckets)), (String, Int64).self)
        for (symbol, start) in starts { addStart(symbol, start) }
        guard !symbols.isEmpty else { return }
        let symbolList = Array(symbols.keys)
        let rows = try await db.query("""
            SELECT q.symbol, q.price, q.observed_at
            FROM unnest(\(symbolList)::TEXT[], \(symbols.values.map(\.from))::BIGINT[]) AS f(symbol, start)
            JOIN quotes q ON q.symbol = f.symbol AND q.observed_at >= f.start
            ORDER BY q.symbol, q.observed_at
            """, logger: PostgresStore.logger)
        for try await row in rows {
            var cells = CellReader(row)
            let symbol: String = try cells.next()
            try symbols[symbol]!.append(cells.next(), at: cells.next())
        }
        loaded()
    }

    /// Fills `references` for these keys: one query for the windows' prices (one lookup
    /// per distinct time), one for the daily references (one per symbol, basis and day).
    mutating func fetchReferences(_ keys: Set<ReferenceKey>, _ db: PostgresConnection) async throws {
        var daily = Set<DailyKey>()
        var missing = Set<ReferenceKey>()
        for key in keys where references[key] == nil {
            if let dailyKey = dailyKey(key) {
                if dailyReferences[dailyKey] == nil { daily.insert(dailyKey) }
            } else {
                missing.insert(key)
            }
        }
        try await fetchDailyReferences(Array(daily), db)
        guard !missing.isEmpty else { return }
        struct Lookup: Hashable { let symbol: String; let at: Int64 }
        let lookups = Array(Set(missing.map { Lookup(symbol: $0.symbol, at: referenceTime($0)) }))
        var prices: [Lookup: Double] = [:]
        for (index, price) in try await db.rows("""
            SELECT k.i, (SELECT q.price FROM quotes q WHERE q.symbol = k.symbol AND q.observed_at <= k.at ORDER BY q.observed_at DESC LIMIT 1)
            FROM unnest(\(lookups.map(\.symbol))::TEXT[], \(lookups.map(\.at))::BIGINT[]) WITH ORDINALITY AS k(symbol, at, i)
            """, (Int, Double?).self) {
            if let price { prices[lookups[index - 1]] = price }
        }
        for key in missing { references[key] = .some(prices[Lookup(symbol: key.symbol, at: referenceTime(key))]) }
    }

    /// Fills `dailyReferences` for these keys in one query.
    mutating func fetchDailyReferences(_ keys: [DailyKey], _ db: PostgresConnection) async throws {
        guard !keys.isEmpty else { return }
        let rows = try await db.rows("""
            SELECT k.i,
                CASE k.basis
                WHEN 'close' THEN coalesce((SELECT p.close FROM previous_closes p WHERE p.symbol = k.symbol AND p.day = k.day),
                    (SELECT d.close FROM daily_prices d WHERE d.symbol = k.symbol AND d.day < k.day ORDER BY d.day DESC LIMIT 1))
                WHEN 'high' THEN (SELECT max(d.close) FROM daily_prices d WHERE d.symbol = k.symbol AND d.day >= k.first AND d.day < k.day)
                ELSE (SELECT min(d.close) FROM daily_prices d WHERE d.symbol = k.symbol AND d.day >= k.first AND d.day < k.day) END,
                (SELECT min(d.day) FROM daily_prices d WHERE d.symbol = k.symbol)
            FROM unnest(\(keys.map(\.symbol))::TEXT[], \(keys.map(\.basis.name))::TEXT[], \(keys.map(\.day))::TEXT[], \(keys.map(\.from))::TEXT[])
                WITH ORDINALITY AS k(symbol, basis, day, first, i)
            """, (Int, Double?, String?).self)
        for (index, value, oldest) in rows {
            let key = keys[index - 1]
            dailyReferences[key] = .some(key.basis == .previousClose ? value : Self.extreme(value, oldest: oldest, key: key))
        }
    }

    /// A candidate's columns (`start` and `trail`: expressions, as in `columns(trail:)`).
    static func pgColumns(start: String, trail: String = lookedUpTrail) -> String {
        """
        a.id, a.user_id, a.symbol, a.kind, a.value, a.percent, a.window_seconds, a.trigger, a.cooldown_seconds,
        a.rearm_margin_percent, a.state, CASE WHEN a.cooldown_seconds > 0 THEN \(PostgresStore.lastFiredAt) END, a.channels::text, \(start),
        a.snoozed_until, a.schedule,
        CASE WHEN a.schedule IS NULL THEN NULL ELSE (SELECT u.timezone FROM users u WHERE u.id = a.user_id) END, \(trail)
        """
    }

    /// The seeks of `Evaluation.seeks` over the batch's ranges, bound as arrays, then every
    /// new and resumed alert.
    mutating func readCandidates(
        _ db: PostgresConnection, batch: [(String, Range)], references: [(pair: ReferencePair, range: Range)], buckets: [Int]?
    ) async throws {
        // The batch's ranges (b) and reference ranges (r), unnested once for all the seeks:
        // inline, each of the 16 or so seeks unnested the arrays again (1-3 ms each at
        // 5,000 symbols). The candidate read at 1,000,000 alerts: 446-494 → 410-465 ms;
        // the whole evaluate at 100,000: 0.549 → 0.491 s (docs/benchmarks.md).
        let ranges = """
            WITH b AS MATERIALIZED (
                SELECT * FROM unnest($1::TEXT[], $2::DOUBLE PRECISION[], $3::DOUBLE PRECISION[],
                       $10::DOUBLE PRECISION[], $11::DOUBLE PRECISION[], $12::DOUBLE PRECISION[], $13::DOUBLE PRECISION[])
                    AS x(symbol, low, high, rising_from, rising_to, falling_from, falling_to)),
            r AS MATERIALIZED (
                SELECT * FROM unnest($4::TEXT[], $5::BIGINT[], $6::DOUBLE PRECISION[], $7::DOUBLE PRECISION[], $8::BOOLEAN[], $9::TEXT[])
                    AS y(symbol, window_seconds, low, high, missing, basis))
            """
        // The seeks find alerts that follow their symbol's watermark (no start); new and
        // resumed alerts come from `alert_starts`, each once.
        let followers = Self.pgColumns(start: "NULL::BIGINT")
        let following = "NOT EXISTS (SELECT 1 FROM alert_starts s WHERE s.alert_id = a.id)"
        var parts: [String]
        if prefilter {
            // A seek of armed alerts runs per symbol (and reference) as a LATERAL subquery,
            // its price bound an index range; OFFSET 0 keeps it from being flattened back
            // into a join. Joined flat, the planner hashed every armed alert of the kind
            // instead (100,000 alerts: the four armed seeks took 183 of the candidate read's
            // 218 ms). The few firing alerts are better hashed once than sought per symbol.
            func source(_ outer: String, _ match: String) -> (Seek) -> String {
                { seek in
                    seek.seeksArmedRange
                        ? "\(outer) CROSS JOIN LATERAL (SELECT * FROM alerts a WHERE \(match) AND \(seek.condition) OFFSET 0) a WHERE \(following)"
                        : "\(outer) JOIN alerts a ON \(match) WHERE \(seek.condition) AND \(following)"
                }
            }
            let sources: [Seek.Source: (Seek) -> String] = [
                .rising: source("b", "a.symbol = b.symbol AND a.kind IN ('above', 'crosses_above') AND NOT (\(Self.derivedArmed))"),
                .falling: source("b", "a.symbol = b.symbol AND a.kind IN ('below', 'crosses_below') AND NOT (\(Self.derivedArmed))"),
                // By level, in `alerts_levels`.
                .levels: { seek in
                    "b CROSS JOIN LATERAL (SELECT * FROM alerts a WHERE a.symbol = b.symbol AND \(Self.derivedArmed) AND \(seek.condition) OFFSET 0) a WHERE \(following)"
                },
                .changes: source("r JOIN b ON b.symbol = r.symbol", "a.symbol = r.symbol AND a.window_seconds IS NOT NULL"),
                .sinceClose: source("r JOIN b ON b.symbol = r.symbol", "a.symbol = r.symbol AND a.kind IN ('rise_since_close', 'fall_since_close')"),
                // Its condition reads the trail, joined beside the alert.
                .trailing: { seek in
                    "b JOIN alerts a ON a.symbol = b.symbol AND a.kind IN ('trailing_fall', 'trailing_rise') LEFT JOIN alert_trails t ON t.alert_id = a.id WHERE \(seek.condition) AND \(following)"
                },
            ]
            // Only the seeks of the bases this batch has references of: each further
            // branch is planned and run over alerts even when it finds nothing (the
            // candidate read at 100,000 alerts with no daily references, four runs each:
            // 240-388 ms with all of issue 18's branches, 201-312 ms without them).
            let bases = Set(references.map(\.pair.basis.name))
            let seeks = Self.seeks(forBases: bases)
            // The trailing seek has joined the trail; the others find no trailing rule.
            parts = seeks.map { seek in
                let columns = Self.pgColumns(start: "NULL::BIGINT", trail: seek.source == .trailing ? "t.trailing_from" : "NULL::DOUBLE PRECISION")
                return "SELECT \(columns) FROM \(sources[seek.source]!(seek))"
            }
            // Every parameter must appear in the statement.
            if !seeks.contains(where: { $0.basis != nil }) { parts.append("SELECT \(followers) FROM r JOIN alerts a ON FALSE") }
        } else {
            parts = ["SELECT \(followers) FROM b JOIN alerts a ON a.symbol = b.symbol WHERE a.state IN ('armed', 'firing') AND \(following)"]
            // Every parameter must appear in the statement.
            parts.append("SELECT \(followers) FROM r JOIN alerts a ON FALSE")
        }
        parts.append("""
            SELECT \(Self.pgColumns(start: "s.start_at")) FROM alert_starts s JOIN alerts a ON a.id = s.alert_id
            WHERE a.state IN ('armed', 'firing')
            """ + Self.inBuckets("a.symbol", buckets, 14))
        var binds = PostgresBindings()
        binds.append(batch.map(\.0))
        binds.append(batch.map(\.1.low))
        binds.append(batch.map(\.1.high))
        binds.append(references.map(\.pair.symbol))
        binds.append(references.map(\.pair.basis.windowSeconds))
        // An empty range has every reference missing: its bounds are never read.
        binds.append(references.map { $0.range.isEmpty ? 0 : $0.range.low })
        binds.append(references.map { $0.range.isEmpty ? 0 : $0.range.high })
        binds.append(references.map(\.range.missing))
        binds.append(references.map(\.pair.basis.name))
        let levelBounds = batch.map { symbol, range in
            Self.levelBounds(range, judged: symbols[symbol]?.judged, previous: symbols[symbol]?.previousPrices() ?? Range())
        }
        for column in LevelBounds.columns { binds.append(levelBounds.map { $0[keyPath: column] }) }
        if let buckets { binds.append(buckets) }
        let rows = try await db.query(PostgresQuery(unsafeSQL: ranges + "\n" + parts.joined(separator: "\nUNION ALL\n"), binds: binds), logger: PostgresStore.logger)
        for try await row in rows {
            // Arguments are evaluated left to right: the columns in `pgColumns`' order.
            var cells = CellReader(row)
            try addCandidate(
                id: cells.next(), userId: cells.next(), symbol: cells.next(), kind: ConditionKind(rawValue: cells.next()), value: cells.next(),
                percent: cells.next(), windowSeconds: cells.next(), trigger: AlertTrigger(rawValue: cells.next()), cooldownSeconds: cells.next(),
                rearmMarginPercent: cells.next(), state: AlertState(rawValue: cells.next()), lastFiredAt: cells.next(), channels: cells.next(),
                startAt: cells.next(), snoozedUntil: cells.next(), schedule: cells.next(), timezone: cells.next(), trailingFrom: cells.next())
        }
    }
}
