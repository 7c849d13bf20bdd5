import Foundation
import GRDB
import StockwatchModel

/// evaluate on SQLite: all of it is one IMMEDIATE transaction. The notifications, their
/// deliveries, the alerts' new states and the symbols' watermarks are committed together
/// or not at all, and two evaluate processes run one after the other, the second finding
/// nothing new. UNIQUE (alert_id, quote_id) keeps a duplicate out even so.
///
/// Speed comes from doing per symbol what can be shared and leaving the rest to SQLite:
/// each symbol's new quotes are read once, summarised (lowest and highest price, and for
/// rise/fall the range of reference prices per window) into temporary tables, and index
/// seeks return only the alerts that those ranges could fire or re-arm
/// (Evaluation+Candidates.swift). Swift judges those exactly (`AlertMachine`); an alert the
/// seeks leave out could not have changed. Only what changed is written (Evaluation+Write.swift).
extension AppDatabase: EvaluationStore {
    public func evaluate(now: Date, maxAgeSeconds: Int64, prefilter: Bool) throws(StockwatchError) -> EvaluateReport {
        try write { db in
            var evaluation = Evaluation(now: now.milliseconds, staleBefore: now.milliseconds - maxAgeSeconds * 1000, prefilter: prefilter)
            return try evaluation.run(db)
        }
    }
}

/// One run's working state; lives inside the write transaction.
struct Evaluation {
    /// The quotes of one symbol from the oldest point any of its alerts needs, oldest first.
    struct SymbolQuotes {
        var ids: [Int64] = []
        var prices: [Double] = []
        var times: [Int64] = []
        var watermark: Int64?
        /// The first quote after the watermark: where alerts that follow it start.
        var firstNew = 0
    }

    struct ReferenceKey: Hashable {
        let symbol: String
        let window: Int64
        let index: Int
    }

    /// One alert that may change in this run.
    struct Candidate {
        let id: Int64
        let userId: Int64
        let symbol: String
        let channels: String
        /// The observed time a new or resumed alert judges from: its `start_at`, or for
        /// 0 (no quote when it was added) the first fresh quote. Nil: it follows its
        /// symbol's watermark.
        let startAt: Int64?
        let initial: AlertMachine
        var machine: AlertMachine
    }

    struct Firing {
        let candidate: Int
        let quote: Int64
        let price: Double
        let time: Int64
        let message: String
    }

    let now: Int64
    let staleBefore: Int64
    let prefilter: Bool
    var symbols: [String: SymbolQuotes] = [:]
    /// Reference price per symbol, window and quote index, looked up once.
    var references: [ReferenceKey: Double?] = [:]
    var referenceLookup: RawStatement?
    var candidates: [Candidate] = []
    var firings: [Firing] = []
    var insufficient = Set<Int64>()
    /// Symbols with fresh quotes after their watermark (the rows of `evaluate_batch`).
    var batched = Set<String>()
    var report = EvaluateReport()

    /// Slack for comparing in SQL what Swift compares exactly: the seeks may return a few
    /// alerts too many (Swift then finds no change), never one too few.
    static let slack = "1e-9"

    init(now: Int64, staleBefore: Int64, prefilter: Bool) {
        self.now = now
        self.staleBefore = staleBefore
        self.prefilter = prefilter
    }

    mutating func run(_ db: Database) throws -> EvaluateReport {
        report.expired = try Int64.fetchAll(
            db, sql: "UPDATE alerts SET state = 'expired' WHERE state IN ('armed', 'firing') AND expires_at <= ? RETURNING id",
            arguments: [now]
        ).sorted()
        try loadQuotes(db)
        try summarise(db)
        try readCandidates(db)
        // Every active alert of a symbol with fresh quotes was judged, changed or not
        // (counted from an index alone; new alerts elsewhere are counted as they judge).
        report.evaluated = try Int.fetchOne(db, sql: """
            SELECT count(*) FROM alerts WHERE state IN ('armed', 'firing') AND symbol IN (SELECT symbol FROM temp.evaluate_batch)
            """) ?? 0
        for index in candidates.indices { try judge(index, db) }
        // An alert that fired on some quote of this run had history enough for it.
        let fired = Set(firings.map { candidates[$0.candidate].id })
        report.insufficientHistory = insufficient.subtracting(fired).sorted()
        try write(db)
        return report
    }

    /// Which quotes each symbol needs: from its watermark (followers need that quote as
    /// their previous price) or the earliest start of its new alerts, whichever is older.
    mutating func loadQuotes(_ db: Database) throws {
        var from: [String: Int64] = [:]
        let progress = try RawStatement(db, "SELECT symbol, observed_at FROM evaluation_progress")
        while try progress.step() {
            let symbol = progress.string(0)
            let watermark = progress.int64(1)
            symbols[symbol] = SymbolQuotes(watermark: watermark)
            from[symbol] = watermark
        }
        // start_at 0 (no quote when the alert was added) means: from the first fresh quote.
        let starts = try RawStatement(db, """
            SELECT symbol, min(CASE start_at WHEN 0 THEN ? ELSE start_at END) FROM alerts
            WHERE start_at IS NOT NULL AND state IN ('armed', 'firing') GROUP BY symbol
            """)
        starts.bind(1, staleBefore)
        while try starts.step() {
            let symbol = starts.string(0)
            let start = starts.int64(1)
            from[symbol] = min(from[symbol] ?? start, start)
            if symbols[symbol] == nil { symbols[symbol] = SymbolQuotes() }
        }
        let quotes = try RawStatement(db, "SELECT id, price, observed_at FROM quotes WHERE symbol = ? AND observed_at >= ? ORDER BY observed_at")
        for (symbol, start) in from {
            var loaded = symbols[symbol]!
            quotes.bind(1, symbol)
            quotes.bind(2, start)
            while try quotes.step() {
                loaded.ids.append(quotes.int64(0))
                loaded.prices.append(quotes.double(1))
                loaded.times.append(quotes.int64(2))
            }
            quotes.reset()
            let after = loaded.watermark ?? (staleBefore - 1)
            loaded.firstNew = loaded.times.firstIndex { $0 > after } ?? loaded.times.count
            symbols[symbol] = loaded
        }
    }

    /// Fills the temporary tables the candidate seeks start from: per symbol the price range of
    /// the fresh quotes after its watermark, and per (symbol, window) the range of their
    /// reference prices and whether one is missing.
    mutating func summarise(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TEMP TABLE IF NOT EXISTS evaluate_batch (symbol TEXT PRIMARY KEY, low REAL NOT NULL, high REAL NOT NULL);
            CREATE TEMP TABLE IF NOT EXISTS evaluate_references (
                symbol TEXT NOT NULL, window_seconds INTEGER NOT NULL, low REAL, high REAL, missing INTEGER NOT NULL,
                PRIMARY KEY (symbol, window_seconds));
            DELETE FROM evaluate_batch;
            DELETE FROM evaluate_references;
            """)
        let batch = try RawStatement(db, "INSERT INTO evaluate_batch (symbol, low, high) VALUES (?, ?, ?)")
        for (symbol, quotes) in symbols {
            var low = Double.infinity, high = -Double.infinity
            for i in quotes.firstNew..<quotes.times.count where quotes.times[i] >= staleBefore {
                low = min(low, quotes.prices[i])
                high = max(high, quotes.prices[i])
            }
            guard low <= high else { continue }
            batched.insert(symbol)
            batch.bind(1, symbol)
            batch.bind(2, low)
            batch.bind(3, high)
            try batch.execute()
        }
        let windows = try RawStatement(db, "SELECT DISTINCT symbol, window_seconds FROM alerts INDEXED BY alerts_changes WHERE window_seconds IS NOT NULL")
        var pairs: [(String, Int64)] = []
        while try windows.step() {
            let symbol = windows.string(0)
            if batched.contains(symbol) { pairs.append((symbol, windows.int64(1))) }
        }
        let insert = try RawStatement(db, "INSERT INTO evaluate_references (symbol, window_seconds, low, high, missing) VALUES (?, ?, ?, ?, ?)")
        for (symbol, window) in pairs {
            var low = Double.infinity, high = -Double.infinity
            var missing: Int64 = 0
            let quotes = symbols[symbol]!
            for i in quotes.firstNew..<quotes.times.count where quotes.times[i] >= staleBefore {
                if let reference = try reference(symbol, window: window, index: i, db) {
                    low = min(low, reference)
                    high = max(high, reference)
                } else {
                    missing = 1
                }
            }
            insert.bind(1, symbol)
            insert.bind(2, window)
            if low <= high {
                insert.bind(3, low)
                insert.bind(4, high)
            } else {
                insert.bind(3, nil as Double?)
                insert.bind(4, nil as Double?)
            }
            insert.bind(5, missing)
            try insert.execute()
        }
    }

    /// The last price at or before (quote time - window), cached per symbol, window and quote.
    mutating func reference(_ symbol: String, window: Int64, index: Int, _ db: Database) throws -> Double? {
        let key = ReferenceKey(symbol: symbol, window: window, index: index)
        if let known = references[key] { return known }
        if referenceLookup == nil {
            referenceLookup = try RawStatement(db, "SELECT price FROM quotes WHERE symbol = ? AND observed_at <= ? ORDER BY observed_at DESC LIMIT 1")
        }
        let lookup = referenceLookup!
        lookup.bind(1, symbol)
        lookup.bind(2, symbols[symbol]!.times[index] - window * 1000)
        let price = try lookup.step() ? lookup.double(0) : nil
        lookup.reset()
        references[key] = .some(price)
        return price
    }
    /// Walks one alert through its symbol's quotes in time order.
    mutating func judge(_ index: Int, _ db: Database) throws {
        var candidate = candidates[index]
        guard let quotes = symbols[candidate.symbol] else { return }
        let first: Int
        var previous: Double?
        if let start = candidate.startAt {
            guard let newest = quotes.times.last, newest >= start else { return }
            first = quotes.times.firstIndex { $0 >= start } ?? quotes.times.count
        } else {
            first = quotes.firstNew
            if first > 0 { previous = quotes.prices[first - 1] }
        }
        var judged = false
        for i in first..<quotes.times.count {
            defer { previous = quotes.prices[i] }
            if quotes.times[i] < staleBefore { continue }  // too old to be the current price
            judged = true
            let referencePrice = try candidate.machine.condition.windowSeconds.flatMap { window in
                try reference(candidate.symbol, window: window, index: i, db)
            }
            let outcome = candidate.machine.judge(
                symbol: candidate.symbol, price: quotes.prices[i], time: quotes.times[i], previous: previous, reference: referencePrice)
            switch outcome {
            case .quiet, .suppressed: break
            case .insufficientHistory: insufficient.insert(candidate.id)
            case let .notify(message):
                firings.append(Firing(candidate: index, quote: quotes.ids[i], price: quotes.prices[i], time: quotes.times[i], message: message))
            }
            if candidate.machine.state == .fired { break }
        }
        if judged, candidate.startAt != nil, !batched.contains(candidate.symbol) { report.evaluated += 1 }
        candidates[index] = candidate
    }
}
