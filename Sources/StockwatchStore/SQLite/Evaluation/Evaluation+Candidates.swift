import Foundation
import GRDB
import StockwatchModel

/// Finding the alerts that may change: the partial-index seeks and the new alerts.
extension Evaluation {
    /// A candidate's columns; `trail`: its running peak or low (the trailing seek has
    /// joined it as `t`; the other seeks find no trailing rule); `start`: NULL for alerts
    /// that follow their symbol's watermark (their `start_at` is a start already judged).
    static func columns(trail: String = lookedUpTrail, start: String = "NULL") -> String {
        """
        a.id, a.user_id, a.symbol, a.kind, a.value, a.percent, a.window_seconds, a.trigger, a.cooldown_seconds,
        a.rearm_margin_percent, a.state, \(lastFiredForCooldown), a.channels, \(start), a.snoozed_until, a.schedule,
        CASE WHEN a.schedule IS NULL THEN NULL ELSE (SELECT u.timezone FROM users u WHERE u.id = a.user_id) END, \(trail)
        """
    }

    /// The last firing, read only where a cooldown judges it: without one no rule reads it,
    /// and evaluate does not write it.
    static let lastFiredForCooldown = "CASE WHEN a.cooldown_seconds > 0 THEN \(AlertRecord.lastFiredAt(of: "a")) END"

    /// The partial indexes of the seeks, each with the condition on an alert (`a`) that
    /// its WHERE is: between them they hold every kind once, with symbol and state.
    static let kindIndexes: [(source: Seek.Source, index: String, kinds: String)] = [
        (.rising, "alerts_rising", "a.kind IN ('above', 'crosses_above') AND NOT (\(derivedArmed))"),
        (.falling, "alerts_falling", "a.kind IN ('below', 'crosses_below') AND NOT (\(derivedArmed))"),
        (.levels, "alerts_levels", derivedArmed),
        (.changes, "alerts_changes", "a.window_seconds IS NOT NULL"),
        (.trailing, "alerts_trailing", "a.kind IN ('trailing_fall', 'trailing_rise')"),
        (.sinceClose, "alerts_since_close", "a.kind IN ('rise_since_close', 'fall_since_close')"),
    ]

    /// Alerts that follow their symbol's watermark and whose rule the new price range could
    /// fire or re-arm (see `slack`), then all new and resumed alerts.
    mutating func readCandidates(_ db: Database, rounds: StartRounds) throws {
        try readFiringAside(db, rounds: rounds)
        guard prefilter else {
            try readAlerts(db, """
                SELECT \(Self.columns()) FROM temp.evaluate_batch b CROSS JOIN alerts a ON a.symbol = b.symbol
                WHERE \(AlertRecord.isActive("a")) AND a.id <= ?2 AND a.start_round <= ?1
                """, rounds: rounds)
            try readStarters(db, rounds: rounds)
            return
        }
        // Each part seeks one partial index per symbol (or window) with new prices; the
        // seeks of a reference range start from it. The alerts that follow their symbol's
        // watermark are sought with the ranges of its fresh quotes; new and resumed ones
        // with the ranges of the quotes from their earliest start (a first evaluate of
        // 100,000 new alerts read every one of them before).
        // Few alerts a symbol: one descent a symbol instead (`readsEachSymbolOnce`). The
        // highest id is asked only of a batch that large, not of every small tick.
        func eachSymbolOnce(_ symbols: Int) throws -> Bool {
            if let forced = Self.readsEachSymbolOnce { return forced }
            guard symbols >= Self.manySymbols else { return false }
            return (try Int64.fetchOne(db, sql: "SELECT max(id) FROM alerts") ?? 0) < Int64(symbols) * Self.fewAlertsPerSymbol
        }
        // A partial index without an entry has nothing to seek: its seeks are not run (a
        // descent a symbol each, into the trailing index at the standard mix).
        let indexed = try Self.indexedSources(db)
        // `start`: the column a candidate judges from (NULL: it follows its watermark). Such
        // a candidate's last column is its moved trail when it merely moves it
        // (`trailMoves`), else NULL; a new one judges from its own start.
        func seeks(batch: String, references: String, bases: Set<String>, start: String, rounds filter: String, eachSymbolOnce: Bool) -> String {
            let seeks = Self.seeks(forBases: bases).filter { indexed.contains($0.source) }
            if seeks.isEmpty { return "" }
            if eachSymbolOnce { return Self.symbolSeek(seeks, batch: batch, references: references, start: start, filter: filter) }
            var sources: [Seek.Source: String] = [:]
            for (source, index, kinds) in Self.kindIndexes {
                // A reference row carries its symbol's price range (`b`'s) and the kinds of
                // its alerts: no lookup of `b`, and no descent for a kind the symbol lacks
                // (half of the reference seeks' time at 5,000 symbols).
                let referenced = source == .changes || source == .sinceClose
                sources[source] = "temp.\(referenced ? references : batch) \(referenced ? "r" : "b") CROSS JOIN alerts a INDEXED BY \(index) "
                    + "ON a.symbol = \(referenced ? "r" : "b").symbol AND \(kinds)"
            }
            sources[.trailing]! += " LEFT JOIN alert_trails t ON t.alert_id = a.id"
            return seeks.map { seek in
                let trail = seek.source == .trailing ? "t.trailing_from" : "NULL"
                var condition = seek.condition
                if seek.source == .changes || seek.source == .sinceClose, let kind = seek.kind {
                    condition = "r.kinds & \(Seek.bit(kind)) <> 0 AND "
                        + condition.replacingOccurrences(of: "b.high", with: "r.price_high").replacingOccurrences(of: "b.low", with: "r.price_low")
                }
                var moved = "NULL"
                if seek.source == .trailing, start == "NULL", let kind = seek.kind, let move = Self.trailMoves[kind] {
                    moved = "CASE WHEN \(move.condition) THEN \(move.trail) END"
                }
                let symbol = seek.source == .changes || seek.source == .sinceClose ? "r.symbol" : "b.symbol"
                return "SELECT \(Self.columns(trail: trail, start: start)), \(moved) FROM \(sources[seek.source]!) "
                    + "WHERE \(symbol) BETWEEN ?3 AND ?4 AND \(condition) AND \(filter)"
            }
                .joined(separator: "\nUNION ALL\n")
        }
        // Each statement only when some alert can answer it: a seek costs about the same
        // whether it finds anything or not, and there are up to 18 per symbol.
        if rounds.lastAlertID > 0 {
            try readAlerts(db, seeks(
                batch: "evaluate_batch", references: "evaluate_references", bases: referenceBases.following, start: "NULL",
                rounds: "a.id <= ?2 AND a.start_round <= ?1 AND NOT \(AlertRecord.endedAside("a"))", eachSymbolOnce: try eachSymbolOnce(batched.count)),
                rounds: rounds, symbolRuns: batchRuns, movedTrails: true)
        }
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM temp.evaluate_starts)") == true {
            try readAlerts(db, seeks(
                batch: "evaluate_starts", references: "evaluate_start_references", bases: referenceBases.starting, start: "a.start_at",
                rounds: "a.start_round > ?1 AND NOT \(AlertRecord.endedAside("a"))", eachSymbolOnce: try eachSymbolOnce(starterSpans.count)),
                rounds: rounds, symbolRuns: startRuns, following: false)
        }
        try settleStarters(db, rounds: rounds)
    }

    /// Whether the candidates are read with one descent a symbol in `alerts_symbol`, each
    /// row tested against every seek's condition (`symbolSeek`), rather than a descent a
    /// symbol for each seek in its partial index. Nil: chosen by the alerts a symbol may
    /// have (`fewAlertsPerSymbol`). Tests set it to compare the two reads.
    @TaskLocal static var readsEachSymbolOnce: Bool?

    /// Below this many alerts a symbol (the highest alert id, at least the alerts there
    /// are, over the symbols read), one descent a symbol. Measured in the twenty-ninth
    /// session on the same 10,000 candidates: at 2 alerts a symbol the 12 seeks took 201 ms
    /// over 50,000 symbols, one descent 95 ms; at 20 a symbol 36 ms against 82 ms.
    static let fewAlertsPerSymbol: Int64 = 4

    /// And only for this many symbols or more: below, either read takes a few milliseconds,
    /// and a small database reads as it always has.
    static let manySymbols = 1_000

    /// The seeks run over this many of the batch's symbols at a time (`?3` to `?4`, see
    /// `runs(of:)`), every seek for them before the next run's. Over the whole batch at
    /// once each seek passed the alerts' table anew, and 48 MiB of page cache did not
    /// hold it from one seek to the next: at 1,000,000 alerts near the price a tick read
    /// 63,343 pages of the file for 15,234 distinct ones, 33,443 in runs (docs/benchmarks.md,
    /// thirty-fifth session). Tests set it to a symbol or two.
    @TaskLocal static var seekRun = 1_000

    /// `items` in SQLite's order of their text keys (BINARY: by bytes). Swift's `<`
    /// compares NFC text by its bytes too, and ASCII (every symbol) is NFC: sorted by `<`,
    /// three times faster than byte by byte (9 against 30 ms for 50,000 symbols). Other
    /// text by its bytes: `<` ranks canonically equivalent forms as one, and a run bounded
    /// in that order could leave a key between two runs.
    static func sortedInKeyOrder<Item>(_ items: [Item], by key: (Item) -> String) -> [Item] {
        if items.allSatisfy({ key($0).utf8.allSatisfy { $0 < 0x80 } }) { return items.sorted { key($0) < key($1) } }
        return items.sorted { key($0).utf8.lexicographicallyPrecedes(key($1).utf8) }
    }

    /// Items keyed by a symbol of this run in SQLite's key order, as `sortedInKeyOrder`:
    /// those whose symbol has a `keyRank` by it, the others (new to the watermarks) sorted
    /// by their text and merged in. Sorting 50,000 symbols by their text was 2.5% of the
    /// near tick's instructions (the batch, then the watermarks).
    func inKeyOrder<Item>(_ items: [Item], symbol: (Item) -> String) -> [Item] {
        // Each ranked item's index in its rank's slot: no comparison, and each item
        // moved once (sorting the items themselves by rank moved them about).
        var slots = [Int](repeating: -1, count: keyRanks)
        var others: [Int] = []
        for index in items.indices {
            if let rank = symbols[symbol(items[index])]?.keyRank, rank < keyRanks, slots[rank] < 0 { slots[rank] = index } else { others.append(index) }
        }
        var ordered: [Item] = []
        ordered.reserveCapacity(items.count)
        guard !others.isEmpty else {
            for index in slots where index >= 0 { ordered.append(items[index]) }
            return ordered
        }
        others = Self.sortedInKeyOrder(others) { symbol(items[$0]) }
        var next = others.startIndex
        for index in slots where index >= 0 {
            while next < others.endIndex, Self.precedesInKeyOrder(symbol(items[others[next]]), symbol(items[index])) {
                ordered.append(items[others[next]])
                next += 1
            }
            ordered.append(items[index])
        }
        for index in others[next...] { ordered.append(items[index]) }
        return ordered
    }

    /// Whether `a` comes before `b` in SQLite's BINARY order (see `sortedInKeyOrder`).
    static func precedesInKeyOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.allSatisfy { $0 < 0x80 } && b.utf8.allSatisfy { $0 < 0x80 } ? a < b : a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// Keys in `sortedInKeyOrder` as runs of `seekRun`, each its first and last key: the seeks'
    /// `BETWEEN` bounds. The reference tables hold only keys of their batch, so runs of
    /// the batch's keys cover them too.
    static func runs(of sortedKeys: [String]) -> [(first: String, last: String)] {
        let run = seekRun
        return stride(from: 0, to: sortedKeys.count, by: run).map { start in
            (sortedKeys[start], sortedKeys[min(start + run, sortedKeys.count) - 1])
        }
    }

    /// The seeks as one statement: every alert of a symbol read through `alerts_symbol`,
    /// kept if it is in some seek's partial index (`kindIndexes`) and meets that seek's
    /// condition, which is the same text; a reference range is tested where it is, and a
    /// trail looked up by its key.
    static func symbolSeek(_ seeks: [Seek], batch: String, references: String, start: String, filter: String) -> String {
        let tests = seeks.map { seek in
            let kinds = kindIndexes.first { $0.source == seek.source }!.kinds
            switch seek.source {
            case .changes, .sinceClose:
                return "(\(kinds) AND EXISTS (SELECT 1 FROM temp.\(references) r WHERE r.symbol = b.symbol AND \(seek.condition)))"
            case .trailing:
                let trail = "(SELECT tr.trailing_from FROM alert_trails tr WHERE tr.alert_id = a.id)"
                return "(\(kinds) AND (\(seek.condition.replacingOccurrences(of: "t.trailing_from", with: trail))))"
            case .rising, .falling, .levels:
                return "(\(kinds) AND \(seek.condition))"
            }
        }
        return """
            SELECT \(columns(start: start)), NULL FROM temp.\(batch) b CROSS JOIN alerts a INDEXED BY alerts_symbol ON a.symbol = b.symbol
            WHERE b.symbol BETWEEN ?3 AND ?4 AND (\(tests.joined(separator: "\n OR "))) AND \(filter)
            """
    }

    /// The seeks' sources whose partial index (`kindIndexes`) holds some alert, in one statement.
    static func indexedSources(_ db: Database) throws -> Set<Seek.Source> {
        let probes = kindIndexes.map { _, index, kinds in "EXISTS (SELECT 1 FROM alerts a INDEXED BY \(index) WHERE \(kinds))" }
        let row = try RawStatement(db, "SELECT " + probes.joined(separator: ", "))
        guard try row.step() else { return [] }
        return Set(kindIndexes.indices.filter { row.int64(Int32($0)) != 0 }.map { kindIndexes[$0].source })
    }

    /// The alerts of the batch's symbols firing aside (migration v25): judged from
    /// `firing`, whether or not the prices could re-arm them (they are few: those firing
    /// now). Read first, so that the seeks, which pass them again as the armed alerts
    /// their rows say, skip them (`asideAlerts`). Only alerts that follow their symbol's
    /// watermark: a new or resumed alert has no such row.
    mutating func readFiringAside(_ db: Database, rounds: StartRounds) throws {
        guard rounds.lastAlertID > 0, !batched.isEmpty,
              try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM alert_firing)") == true
        else { return }
        try readAlerts(db, """
            SELECT \(Self.columns()) FROM alert_firing f CROSS JOIN temp.evaluate_batch b ON b.symbol = f.symbol
            CROSS JOIN alerts a ON a.id = f.alert_id
            WHERE \(AlertRecord.firingAside("a")) AND a.id <= ?2 AND a.start_round <= ?1
            """, rounds: rounds, firingAside: true)
    }

    /// What the starters' seeks cannot tell: which new and resumed alerts cannot start yet
    /// (no current quote at or after their start: they move to the next round, as
    /// `collect` finds for those it judges), and how many of those of symbols without
    /// fresh quotes after the watermark judged some quote (the count of the other symbols
    /// counts theirs).
    /// Only the symbols where either can happen are read, through the start index.
    mutating func settleStarters(_ db: Database, rounds: StartRounds) throws {
        var newest: [String: Int64] = [:]
        for (symbol, span) in starterSpans {
            let last = symbols[symbol]?.times.last ?? Int64.min
            // A start waits for a current quote at or after it (`collect`).
            let mayWait = last < max(span.latest, staleBefore)
            let counted = !batched.contains(symbol) && last >= staleBefore && last >= span.earliest
            if mayWait || counted { newest[symbol] = last }
        }
        guard !newest.isEmpty else { return }
        let attention = try RawStatement(db, "INSERT INTO evaluate_attention (symbol) VALUES (?)")
        for symbol in newest.keys {
            attention.bind(1, symbol)
            try attention.execute()
        }
        // The symbol is tested in the index: only these symbols' rows are read.
        let rows = try RawStatement(db, """
            SELECT a.id, a.symbol, a.start_at FROM alerts a INDEXED BY alerts_starting
            WHERE a.start_round > ?1 AND a.symbol IN (SELECT symbol FROM temp.evaluate_attention) AND \(AlertRecord.isActive("a"))
            """)
        rows.bind(1, rounds.judgedThrough)
        var symbol = ""
        var last = Int64.min
        var isBatched = false
        while try rows.step() {
            if !rows.text(1, equals: symbol) {
                symbol = rows.string(1)
                last = newest[symbol] ?? Int64.min
                isBatched = batched.contains(symbol)
            }
            let stored = rows.int64(2)
            guard last >= max(stored, staleBefore) else {
                waitingStarters.append(rows.int64(0))
                continue
            }
            if !isBatched, last >= staleBefore { report.evaluated += 1 }
        }
    }

    /// New and resumed alerts (a round evaluate has not judged through), judged from their
    /// own start; few, except after a bulk import.
    mutating func readStarters(_ db: Database, rounds: StartRounds) throws {
        guard rounds.anyNew else { return }
        try readAlerts(
            db, "SELECT \(Self.columns(start: "a.start_at")) FROM alerts a WHERE a.start_round > ?1 AND \(AlertRecord.isActive("a"))",
            rounds: rounds, following: false)
    }

    /// `?1` in `sql`: the round evaluate has judged through; `?2` (`following`): the
    /// highest alert id that may follow its symbol's watermark. Tested first, in the
    /// index, it spares reading the row of each new alert the seeks pass. `?3` and `?4`:
    /// the first and last symbol of each of `symbolRuns` in turn (nil: no such bounds).
    /// `movedTrails`: the seeks' last column, a trail that merely moves (`trailMoves`),
    /// written without judging its rule.
    mutating func readAlerts(
        _ db: Database, _ sql: String, rounds: StartRounds, symbolRuns: [(first: String, last: String)]? = nil, following: Bool = true,
        firingAside: Bool = false, movedTrails: Bool = false
    ) throws {
        guard !sql.isEmpty else { return }  // no seek to run
        let rows = try RawStatement(db, sql)
        rows.bind(1, rounds.judgedThrough)
        if following { rows.bind(2, rounds.lastAlertID) }
        guard let symbolRuns else { return try readAlerts(rows, firingAside: firingAside, movedTrails: movedTrails) }
        for run in symbolRuns {
            rows.bind(3, run.first)
            rows.bind(4, run.last)
            try readAlerts(rows, firingAside: firingAside, movedTrails: movedTrails)
            rows.reset()
        }
    }

    /// The candidates of one run of `rows`, bound.
    private mutating func readAlerts(_ rows: RawStatement, firingAside: Bool, movedTrails: Bool) throws {
        // Rows of one symbol come together and most alerts share a channel list: the
        // previous row's text is kept when the bytes are the same.
        var symbol = ""
        var channels = ""
        let kinds = TextCases(ConditionKind.self), triggers = TextCases(AlertTrigger.self), states = TextCases(AlertState.self)
        while try rows.step() {
            if !asideAlerts.isEmpty, !firingAside, asideAlerts.contains(rows.int64(0)) { continue }
            if firingAside { asideAlerts.insert(rows.int64(0)) }
            if movedTrails, !rows.isNull(18) {
                trailChanges.append((rows.int64(0), rows.double(18)))
                continue
            }
            if !rows.text(2, equals: symbol) { symbol = rows.string(2) }
            if !rows.text(12, equals: channels) { channels = rows.string(12) }
            try addCandidate(
                id: rows.int64(0), userId: rows.int64(1), symbol: symbol, kind: rows.value(3, in: kinds), value: rows.optionalDouble(4),
                percent: rows.optionalDouble(5), windowSeconds: rows.optionalInt64(6), trigger: rows.value(7, in: triggers),
                cooldownSeconds: rows.int64(8), rearmMarginPercent: rows.double(9), state: rows.value(10, in: states),
                lastFiredAt: rows.optionalInt64(11), channels: channels, startAt: rows.optionalInt64(13), snoozedUntil: rows.optionalInt64(14),
                schedule: rows.optionalString(15), timezone: rows.optionalString(16), trailingFrom: rows.optionalDouble(17),
                firingAside: firingAside)
            if candidates.count >= chunk { try settle() }
        }
    }
}
