import Foundation
import GRDB
import StockwatchModel

/// evaluate on SQLite: all of it is one IMMEDIATE transaction. The notifications, their
/// deliveries, the alerts' new states and the symbols' watermarks are committed together
/// or not at all, and two evaluate processes run one after the other, the second finding
/// nothing new. UNIQUE (alert_id, observed_at) keeps a duplicate out even so.
///
/// Speed comes from doing per symbol what can be shared and leaving the rest to SQLite:
/// each symbol's new quotes are read once, summarised (lowest and highest price, and for
/// rise/fall the range of reference prices per window) into temporary tables, and index
/// seeks return only the alerts that those ranges could fire or re-arm
/// (Evaluation+Candidates.swift). Swift judges those exactly (Evaluation/Evaluation.swift);
/// an alert the seeks leave out could not have changed. Only what changed is written
/// (Evaluation+Write.swift).
extension AppDatabase: EvaluationStore {
    public func evaluate(now: Date, maxAgeSeconds: Int64, prefilter: Bool, detailed: Bool) throws(StockwatchError) -> EvaluateReport {
        try write { db in
            var evaluation = Evaluation(now: now.milliseconds, staleBefore: now.milliseconds - maxAgeSeconds * 1000, prefilter: prefilter)
            evaluation.recordsStarts = false  // rounds (migration v15)
            evaluation.derivesLevels = true  // migration v19
            evaluation.endsAside = true  // migration v23
            evaluation.firingAside = true  // migration v25
            evaluation.detailed = detailed
            let report = try evaluation.run(db)
            evaluation.releaseInBackground()
            return report
        }
    }

    @discardableResult public func foldAlertEnds() throws(StockwatchError) -> Int {
        // Nothing to write, no write transaction: a tick without ends takes no lock for it.
        guard try read({ try Bool.fetchOne($0, sql: "SELECT EXISTS (SELECT 1 FROM alert_ends)") }) == true else { return 0 }
        return try write { db in
            // A row whose alert's state was written since (paused, expired) no longer counts.
            try db.execute(sql: "UPDATE alerts SET state = 'fired' WHERE id IN (SELECT alert_id FROM alert_ends) AND state IN ('armed', 'firing')")
            let folded = db.changesCount
            try db.execute(sql: "DELETE FROM alert_ends")
            return folded
        }
    }
}

extension Evaluation {
    mutating func run(_ db: Database) throws -> EvaluateReport {
        countsStarters = !prefilter  // with the seeks, `settleStarters` counts them
        report.expired = try Int64.fetchAll(
            db, sql: "UPDATE alerts SET state = 'expired' WHERE \(AlertRecord.isActive("alerts")) AND expires_at <= ? RETURNING id",
            arguments: [now]
        ).sorted()
        // Written, the state outranks a firing kept aside (migration v25): its row goes.
        if !report.expired.isEmpty {
            try db.execute(sql: "DELETE FROM alert_firing WHERE alert_id IN (SELECT value FROM json_each(?))", arguments: [JSONOutput.encode(report.expired)])
        }
        // Prepared at its first use: creating summarise's temporary tables (a schema change)
        // empties GRDB's statement cache, which would free a statement prepared before.
        var prepared: RawStatement?
        lookupReference = { symbol, at in
            if prepared == nil {
                prepared = try RawStatement(db, "SELECT price FROM quotes WHERE symbol = ? AND observed_at <= ? ORDER BY observed_at DESC LIMIT 1")
            }
            let lookup = prepared!
            lookup.bind(1, symbol)
            lookup.bind(2, at)
            defer { lookup.reset() }
            return try lookup.step() ? lookup.double(0) : nil
        }
        var daily: AppDatabase.DailyLookups?
        lookupDaily = { key in
            if daily == nil { daily = try AppDatabase.DailyLookups(db) }
            switch key.basis {
            case .previousClose: return try daily!.previousClose(key.symbol, day: key.day)
            case .highest, .lowest:
                let (value, oldest) = try daily!.extreme(key.symbol, high: key.basis.isHighest, from: key.from, before: key.day)
                return Self.extreme(value, oldest: oldest, key: key)
            case .window: return nil
            }
        }
        let rounds = try StartRounds(db)
        try loadQuotes(db, rounds: rounds)
        try summarise(db)
        try readCandidates(db, rounds: rounds)
        // Every active alert of a symbol with fresh quotes was judged, changed or not
        // (counted from the seeks' partial indexes alone, which hold every kind between
        // them; new alerts elsewhere are counted as they judge). Only when the count is
        // shown: it passes every such alert's index entry.
        if detailed {
            // Less the `once` alerts ended aside (migration v23), which the indexes hold as armed.
            report.evaluated += try Int.fetchOne(db, sql: "SELECT " + Self.kindIndexes.map { _, index, kinds in
                """
                (SELECT count(*) FROM temp.evaluate_batch b CROSS JOIN alerts a INDEXED BY \(index)
                 ON a.symbol = b.symbol AND \(kinds) WHERE a.state IN ('armed', 'firing'))
                """
            }.joined(separator: " + ") + """
                 - (SELECT count(*) FROM alert_ends e JOIN alerts a ON a.id = e.alert_id
                    WHERE a.state IN ('armed', 'firing') AND a.symbol IN (SELECT symbol FROM temp.evaluate_batch))
                """) ?? 0
        }
        try judgeAll()
        try write(db, rounds: rounds)
        // Nor a partial one: new alerts are counted as they are judged, above.
        if !detailed { report.evaluated = 0 }
        return report
    }

    /// Where new and resumed alerts stand (migration v15): those of a round above
    /// `judgedThrough` start in this run; `highest` is the newest round of any alert.
    /// Every alert above `lastAlertID` is new since the last run that passed the rounds.
    struct StartRounds {
        let judgedThrough: Int64
        let lastAlertID: Int64
        let highest: Int64
        var anyNew: Bool { highest > judgedThrough }

        init(_ db: Database) throws {
            let row = try Row.fetchOne(db, sql: "SELECT judged_through, last_alert_id FROM evaluation_starts")
            judgedThrough = row?[0] ?? 0
            lastAlertID = row?[1] ?? 0
            highest = try Int64.fetchOne(db, sql: "SELECT max(start_round) FROM alerts") ?? 0
        }
    }

    mutating func loadQuotes(_ db: Database, rounds: StartRounds) throws {
        // Sized first: growing to 50,000 symbols rehashed every key on the way, 87% of
        // this loop's time at the near shape.
        symbols.reserveCapacity(try Int.fetchOne(db, sql: "SELECT count(*) FROM evaluation_progress") ?? 0)
        // In key order (the table's own, no sort): each symbol keeps its place, and the
        // batch and the watermarks go out in that order without comparing their text.
        let progress = try RawStatement(db, "SELECT symbol, observed_at, judged_price FROM evaluation_progress ORDER BY symbol")
        var rank = 0
        while try progress.step() {
            addProgress(progress.string(0), watermark: progress.int64(1), judged: progress.optionalDouble(2), keyRank: rank)
            rank += 1
        }
        keyRanks = rank
        if rounds.anyNew {
            // From the index alone, in Swift: grouped by SQLite, 1,000,000 new alerts took
            // 0.61 s, most of it sorting. A paused one's start only loads a few quotes more.
            let first = try RawStatement(db, "SELECT symbol, start_at FROM alerts INDEXED BY alerts_starting WHERE start_round > ?")
            first.bind(1, rounds.judgedThrough)
            // Within a round the index is in symbol order: a symbol's rows come together.
            var symbol: String?
            var spans: [String: (earliest: Int64, latest: Int64)] = [:]
            var span = (earliest: Int64.max, latest: Int64.min)
            func keep(_ symbol: String) {
                let known = spans[symbol] ?? span
                spans[symbol] = (min(known.earliest, span.earliest), max(known.latest, span.latest))
            }
            while try first.step() {
                let stored = first.int64(1)
                let start = stored == 0 ? staleBefore : stored
                if let current = symbol, first.text(0, equals: current) {
                    span = (min(span.earliest, start), max(span.latest, start))
                    continue
                }
                if let current = symbol { keep(current) }
                symbol = first.string(0)
                span = (start, start)
            }
            if let current = symbol { keep(current) }
            for (symbol, span) in spans { addStart(symbol, span.earliest) }
            // Without the seeks (`prefilter` off) every new alert is read and judged instead.
            if prefilter { starterSpans = spans }
        }
        // Most symbols in one scan by time (`sharedQuoteStart`), in time order; a quote
        // before a symbol's own start is one it has judged already.
        let shared = sharedQuoteStart()
        if let shared {
            let scan = try RawStatement(db, "SELECT symbol, price, observed_at FROM quotes INDEXED BY quotes_observed WHERE observed_at >= ? ORDER BY observed_at")
            scan.bind(1, shared)
            while try scan.step() {
                guard let index = symbols.index(forKey: scan.string(0)) else { continue }
                let from = symbols.values[index].from, time = scan.int64(2)
                guard from >= shared, time >= from else { continue }
                symbols.values[index].append(scan.double(1), at: time)
            }
        }
        let quotes = try RawStatement(db, "SELECT price, observed_at FROM quotes WHERE symbol = ? AND observed_at >= ? ORDER BY observed_at")
        // By index, without holding the dictionary (see `loaded`).
        var index = symbols.values.startIndex
        while index != symbols.values.endIndex {
            defer { symbols.values.formIndex(after: &index) }
            guard symbols.values[index].from < shared ?? .max else { continue }
            quotes.bind(1, symbols.keys[index])
            quotes.bind(2, symbols.values[index].from)
            while try quotes.step() {
                symbols.values[index].append(quotes.double(0), at: quotes.int64(1))
            }
            quotes.reset()
        }
        loaded()
    }

    /// Fills the temporary tables the candidate seeks start from: per symbol the price range of
    /// the fresh quotes after its watermark (with the span of levels a derived alert can
    /// change within, `levelSeeks`), and per (symbol, basis) the range of their reference
    /// prices and whether one is missing.
    mutating func summarise(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TEMP TABLE IF NOT EXISTS evaluate_batch (
                symbol TEXT PRIMARY KEY, low REAL NOT NULL, high REAL NOT NULL,
                rising_from REAL NOT NULL, rising_to REAL NOT NULL, falling_from REAL NOT NULL, falling_to REAL NOT NULL) WITHOUT ROWID;
            CREATE TEMP TABLE IF NOT EXISTS evaluate_references (
                symbol TEXT NOT NULL, basis TEXT NOT NULL, window_seconds INTEGER NOT NULL, low REAL, high REAL, missing INTEGER NOT NULL,
                kinds INTEGER NOT NULL, price_low REAL NOT NULL, price_high REAL NOT NULL,
                PRIMARY KEY (symbol, basis, window_seconds)) WITHOUT ROWID;
            CREATE TEMP TABLE IF NOT EXISTS evaluate_starts (
                symbol TEXT PRIMARY KEY, low REAL NOT NULL, high REAL NOT NULL,
                rising_from REAL NOT NULL, rising_to REAL NOT NULL, falling_from REAL NOT NULL, falling_to REAL NOT NULL) WITHOUT ROWID;
            CREATE TEMP TABLE IF NOT EXISTS evaluate_start_references (
                symbol TEXT NOT NULL, basis TEXT NOT NULL, window_seconds INTEGER NOT NULL, low REAL, high REAL, missing INTEGER NOT NULL,
                kinds INTEGER NOT NULL, price_low REAL NOT NULL, price_high REAL NOT NULL,
                PRIMARY KEY (symbol, basis, window_seconds)) WITHOUT ROWID;
            CREATE TEMP TABLE IF NOT EXISTS evaluate_attention (symbol TEXT PRIMARY KEY) WITHOUT ROWID;
            DELETE FROM evaluate_batch;
            DELETE FROM evaluate_references;
            DELETE FROM evaluate_attention;
            DELETE FROM evaluate_starts;
            DELETE FROM evaluate_start_references;
            """)
        // 100 rows to a statement (`RowBatches`): one per symbol, 50,000 at the near shape.
        func insertRanges(into table: String, _ rows: [(symbol: String, range: Range, bounds: LevelBounds)]) throws {
            try RowBatches(
                head: "INSERT INTO \(table) (symbol, low, high, rising_from, rising_to, falling_from, falling_to)",
                row: "(?, ?, ?, ?, ?, ?, ?)", parameters: 7
            ).run(db, count: rows.count) { statement, offset, index in
                let (symbol, range, bounds) = rows[index]
                statement.bind(offset + 1, symbol)
                statement.bind(offset + 2, range.low)
                statement.bind(offset + 3, range.high)
                statement.bind(offset + 4, bounds.risingFrom)
                statement.bind(offset + 5, bounds.risingTo)
                statement.bind(offset + 6, bounds.fallingFrom)
                statement.bind(offset + 7, bounds.fallingTo)
            }
        }
        // In the table's order, SQLite's by bytes (`sortedInKeyOrder`): each row lands after
        // the last instead of somewhere in the b-tree, and the seeks' runs are key ranges.
        let fresh = inKeyOrder(freshRanges()) { $0.symbol }
        try insertRanges(into: "evaluate_batch", fresh)
        batchRuns = Self.runs(of: fresh.map(\.symbol))
        // New and resumed alerts: the same per symbol, over the quotes from their earliest
        // start, for the seeks that find those of them that may change.
        let starting: [(symbol: String, range: Range, bounds: LevelBounds)] = starterSpans.keys.compactMap { symbol in
            var range = Range()
            for i in starterIndexes(symbol) { range.add(symbols[symbol]!.prices[i]) }
            return range.isEmpty ? nil : (symbol, range, Self.levelBounds(range, judged: nil))
        }
        try insertRanges(into: "evaluate_starts", starting)
        startRuns = Self.runs(of: Self.sortedInKeyOrder(starting.map(\.symbol)) { $0 })
        // A quiet run (no fresh quote, no new alert) seeks nothing: no index to pass.
        guard !batched.isEmpty || !starterSpans.isEmpty else { return }
        // Every (symbol, basis) some alert has, from the two indexes that hold them, grouped
        // in each index's order: one row a pair and kind, and no temporary b-tree (SQLite's DISTINCT
        // and UNION built them, a tenth of a first evaluate; Swift stepping through every
        // alert's entry cost 4% of a tick at 100,000 alerts).
        let bases = try RawStatement(db, """
            SELECT symbol, kind, window_seconds FROM alerts INDEXED BY alerts_changes WHERE window_seconds IS NOT NULL
                GROUP BY symbol, kind, window_seconds
            UNION ALL SELECT symbol, kind, NULL FROM alerts INDEXED BY alerts_since_close
                WHERE kind IN ('rise_since_close', 'fall_since_close') GROUP BY symbol, kind
            """)
        // With the kinds of each pair's alerts (`Seek.bit`): a seek of a kind the pair lacks
        // is not run for it. Kept per symbol: the rows below go out in the symbols' key
        // order, each symbol's few bases sorted among themselves (sorting all the pairs by
        // symbol, basis and window was 1.7% of a steady evaluate at 100,000 alerts).
        var basesOf: [String: [(basis: Basis, kinds: Int64)]] = [:]
        var symbol = "", isBatched = false
        let kinds = TextCases(ConditionKind.self)
        while try bases.step() {
            if !bases.text(0, equals: symbol) {
                symbol = bases.string(0)
                isBatched = batched.contains(symbol) || starterSpans[symbol] != nil
            }
            guard isBatched else { continue }
            if let rowKind = bases.value(1, in: kinds), let basis = Basis(kind: rowKind.rawValue, window: bases.optionalInt64(2)) {
                let bit = Seek.bit(rowKind)
                // rise and fall of one window share a basis (a list of a few)
                if let index = basesOf[symbol]?.firstIndex(where: { $0.basis == basis }) {
                    basesOf[symbol]![index].kinds |= bit
                } else {
                    basesOf[symbol, default: []].append((basis, bit))
                }
            }
        }
        // In the temporary tables' key order: each row lands after the last (as the batch's).
        var references: [ReferenceRow] = [], startReferences: [ReferenceRow] = []
        for (rows, starters) in [(fresh, false), (Self.sortedInKeyOrder(starting) { $0.symbol }, true)] where !basesOf.isEmpty {
            for row in rows {
                guard let bases = basesOf[row.symbol] else { continue }
                let indexes = starters ? starterIndexes(row.symbol) : nil
                for (basis, kinds) in bases.sorted(by: { ($0.basis.name, $0.basis.windowSeconds) < ($1.basis.name, $1.basis.windowSeconds) }) {
                    // The range first: passed straight into a call on `self`, a copy of `self`
                    // (and of its reference cache) was made for each pair.
                    let range = try referenceRange(row.symbol, basis: basis, indexes: indexes)
                    let reference = ReferenceRow(pair: ReferencePair(symbol: row.symbol, basis: basis), range: range, kinds: kinds, prices: row.range)
                    if starters { startReferences.append(reference) } else { references.append(reference) }
                }
            }
        }
        try Self.insertReferences(into: "evaluate_references", references, db)
        try Self.insertReferences(into: "evaluate_start_references", startReferences, db)
        referenceBases = (Set(references.map(\.pair.basis.name)), Set(startReferences.map(\.pair.basis.name)))
    }

    /// A row of the reference ranges: a (symbol, basis) pair's range of reference prices,
    /// the kinds of its alerts, and its symbol's range of prices (the batch's or the
    /// starters', `b.low` and `b.high` to the seeks).
    struct ReferenceRow {
        let pair: ReferencePair
        let range: Range
        let kinds: Int64
        let prices: Range
    }

    private static func insertReferences(into table: String, _ rows: [ReferenceRow], _ db: Database) throws {
        try RowBatches(
            head: "INSERT INTO \(table) (symbol, basis, window_seconds, low, high, missing, kinds, price_low, price_high)",
            row: "(?, ?, ?, ?, ?, ?, ?, ?, ?)", parameters: 9
        ).run(db, count: rows.count) { statement, offset, index in
            let row = rows[index]
            statement.bind(offset + 1, row.pair.symbol)
            statement.bind(offset + 2, row.pair.basis.name)
            statement.bind(offset + 3, row.pair.basis.windowSeconds)
            statement.bind(offset + 4, row.range.isEmpty ? nil : row.range.low)
            statement.bind(offset + 5, row.range.isEmpty ? nil : row.range.high)
            statement.bind(offset + 6, Int64(row.range.missing ? 1 : 0))
            statement.bind(offset + 7, row.kinds)
            statement.bind(offset + 8, row.prices.low)
            statement.bind(offset + 9, row.prices.high)
        }
    }
}
