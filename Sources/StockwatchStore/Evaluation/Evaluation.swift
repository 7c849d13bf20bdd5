import Foundation
import StockwatchModel

/// One evaluate run's working state, the same on both backends: which quotes each symbol
/// has, which alerts may change, and Swift's exact judgement of them (`AlertMachine`).
/// Each backend reads into it and writes its outcome in its own way, in one transaction
/// (SQLite/Evaluation, PostgreSQL/PostgresStore+Evaluation).
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
        /// The alert's channels as stored (a JSON array).
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

    /// The price range of a symbol's fresh quotes, or of their reference prices for one
    /// window (`missing`: some quote has no reference yet).
    struct Range {
        var low = Double.infinity
        var high = -Double.infinity
        var missing = false
        var isEmpty: Bool { low > high }
        mutating func add(_ price: Double) {
            low = min(low, price)
            high = max(high, price)
        }
    }

    /// An alert whose stored state must change.
    struct AlertChange {
        let id: Int64
        let state: AlertState
        let lastFiredAt: Int64?
        /// A new or resumed alert that judged its first quotes: it follows its symbol's
        /// watermark from now on (`start_at` becomes NULL).
        let started: Bool
        /// False: only `last_fired_at` moved.
        let stateChanged: Bool
        /// The alert's own row changes (its state or last firing), beside any start.
        let rowChanged: Bool
    }

    let now: Int64
    let staleBefore: Int64
    let prefilter: Bool
    var symbols: [String: SymbolQuotes] = [:]
    /// Reference price per symbol, window and quote index, looked up once.
    var references: [ReferenceKey: Double?] = [:]
    /// The last price of `symbol` at or before a time: the backend's lookup, for a
    /// reference not already in `references`.
    var lookupReference: (_ symbol: String, _ at: Int64) throws -> Double? = { _, _ in nil }
    var candidates: [Candidate] = []
    var firings: [Firing] = []
    var insufficient = Set<Int64>()
    /// Symbols with fresh quotes after their watermark.
    var batched = Set<String>()
    var report = EvaluateReport()
    /// Channel lists decoded so far, by their stored JSON (most alerts share a few).
    var channelLists: [String: [String]] = [:]

    /// Slack for comparing in SQL what Swift compares exactly: the seeks may return a few
    /// alerts too many (Swift then finds no change), never one too few.
    static let slack = "1e-9"

    /// One of the candidate seeks: alerts whose rule the new price range could fire or
    /// re-arm. Each backend joins its own `source` rows (aliases: `a` the alert, `b` the
    /// symbol's fresh price range, `r` the reference range of a window, `t` a trailing
    /// rule's row in `alert_trails`).
    struct Seek {
        enum Source { case rising, falling, changes, trailing }
        let source: Source
        let condition: String
    }

    static let seeks: [Seek] = {
        let s = slack
        return [
            // Armed alerts by the level range the prices reached, firing ones to test re-arming.
            Seek(source: .rising, condition: "a.state = 'armed' AND a.value <= b.high * (1 + \(s))"),
            Seek(source: .rising, condition: "a.state = 'firing' AND b.low < a.value * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s))"),
            Seek(source: .falling, condition: "a.state = 'armed' AND a.value >= b.low * (1 - \(s))"),
            Seek(source: .falling, condition: "a.state = 'firing' AND b.high > a.value * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s))"),
            Seek(source: .changes, condition: """
                a.kind = 'rise' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (b.high / (r.low * (1 - \(s))) - 1) * 100 END
                """),
            Seek(source: .changes, condition: """
                a.kind = 'rise' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.low < r.high * (1 + a.percent / 100.0) * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s)))
                """),
            Seek(source: .changes, condition: """
                a.kind = 'fall' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (1 - b.low / (r.high * (1 + \(s)))) * 100 END
                """),
            Seek(source: .changes, condition: """
                a.kind = 'fall' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.high > r.low * (1 - a.percent / 100.0) * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s)))
                """),
            // Trailing rules: a new peak (or low) moves the trail and is written; otherwise
            // only a price that reaches the trail's level, or takes a firing one back.
            Seek(source: .trailing, condition: """
                a.kind = 'trailing_fall' AND a.state IN ('armed', 'firing') AND (t.trailing_from IS NULL OR b.high > t.trailing_from * (1 - \(s))
                OR (a.state = 'armed' AND b.low <= t.trailing_from * (1 - a.percent / 100.0) * (1 + \(s)))
                OR (a.state = 'firing' AND b.high > t.trailing_from * (1 - a.percent / 100.0) * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s))))
                """),
            Seek(source: .trailing, condition: """
                a.kind = 'trailing_rise' AND a.state IN ('armed', 'firing') AND (t.trailing_from IS NULL OR b.low < t.trailing_from * (1 + \(s))
                OR (a.state = 'armed' AND b.high >= t.trailing_from * (1 + a.percent / 100.0) * (1 - \(s)))
                OR (a.state = 'firing' AND b.low < t.trailing_from * (1 + a.percent / 100.0) * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s))))
                """),
        ]
    }()

    /// A candidate's running peak or low, looked up by its key (both backends): for reads
    /// that have not joined `alert_trails` as `t`, as the trailing seek has.
    static let lookedUpTrail = "CASE WHEN a.kind IN ('trailing_fall', 'trailing_rise') THEN (SELECT tr.trailing_from FROM alert_trails tr WHERE tr.alert_id = a.id) END"

    init(now: Int64, staleBefore: Int64, prefilter: Bool) {
        self.now = now
        self.staleBefore = staleBefore
        self.prefilter = prefilter
    }

    /// Adds an alert read by a seek (the columns of `alerts`, as stored).
    mutating func addCandidate(
        id: Int64, userId: Int64, symbol: String, kind: String, value: Double?, percent: Double?, windowSeconds: Int64?, trigger: String,
        cooldownSeconds: Int64, rearmMarginPercent: Double, state: String, lastFiredAt: Int64?, channels: String, startAt: Int64?, snoozedUntil: Int64?,
        schedule: String?, timezone: String?, trailingFrom: Double?
    ) throws {
        guard let kind = ConditionKind(rawValue: kind),
              let condition = Condition(kind: kind, value: value, percent: percent, windowSeconds: windowSeconds),
              let trigger = AlertTrigger(rawValue: trigger), let state = AlertState(rawValue: state)
        else { throw StockwatchError.internal("alert \(id) has an unreadable rule") }
        var machine = AlertMachine(
            condition: condition, trigger: trigger, cooldownSeconds: cooldownSeconds, rearmMarginPercent: rearmMarginPercent,
            state: state, lastFiredAt: lastFiredAt, snoozedUntil: snoozedUntil, trailingFrom: trailingFrom)
        if let schedule {
            // Checked when the alert was added; the zone is the user's (UTC if unknown here).
            machine.schedule = try? WeeklySchedule.parse(schedule, option: "schedule")
            machine.zone = timezone.flatMap(TimeZone.init(identifier:)) ?? .gmt
        }
        candidates.append(Candidate(
            id: id, userId: userId, symbol: symbol, channels: channels, startAt: startAt.map { $0 == 0 ? staleBefore : $0 },
            initial: machine, machine: machine))
    }

    /// Where each symbol's quotes must start: its watermark (followers need that quote as
    /// their previous price) or the earliest start of its new alerts, whichever is older.
    /// `starts`: the earliest start of each symbol's new alerts, a `start_at` of 0 (no
    /// quote when the alert was added) counting as `staleBefore`, the first fresh quote.
    mutating func quoteStarts(watermarks: [String: Int64], starts: [String: Int64]) -> [String: Int64] {
        var from = watermarks
        for (symbol, watermark) in watermarks { symbols[symbol] = SymbolQuotes(watermark: watermark) }
        for (symbol, start) in starts {
            from[symbol] = min(from[symbol] ?? start, start)
            if symbols[symbol] == nil { symbols[symbol] = SymbolQuotes() }
        }
        return from
    }

    /// After a symbol's quotes are loaded: where its fresh quotes begin.
    mutating func loaded(_ symbol: String) {
        var quotes = symbols[symbol]!
        let after = quotes.watermark ?? (staleBefore - 1)
        quotes.firstNew = quotes.times.firstIndex { $0 > after } ?? quotes.times.count
        symbols[symbol] = quotes
    }

    /// The fresh quotes' indexes of a symbol (after its watermark, not stale).
    func freshIndexes(_ symbol: String) -> [Int] {
        guard let quotes = symbols[symbol] else { return [] }
        return (quotes.firstNew..<quotes.times.count).filter { quotes.times[$0] >= staleBefore }
    }

    /// Each symbol's fresh price range; fills `batched`.
    mutating func priceRanges() -> [String: Range] {
        var ranges: [String: Range] = [:]
        for symbol in symbols.keys {
            var range = Range()
            for i in freshIndexes(symbol) { range.add(symbols[symbol]!.prices[i]) }
            guard !range.isEmpty else { continue }
            batched.insert(symbol)
            ranges[symbol] = range
        }
        return ranges
    }

    /// The range of reference prices of a symbol's fresh quotes for one window.
    mutating func referenceRange(_ symbol: String, window: Int64) throws -> Range {
        var range = Range()
        for i in freshIndexes(symbol) {
            if let price = try reference(symbol, window: window, index: i) { range.add(price) } else { range.missing = true }
        }
        return range
    }

    /// The reference keys (symbol, window, quote) that judging the candidates may need:
    /// for a backend that fetches them in one batch first.
    func referenceKeysNeeded() -> Set<ReferenceKey> {
        var keys = Set<ReferenceKey>()
        for candidate in candidates {
            guard let window = candidate.machine.condition.windowSeconds, let range = judgedRange(candidate) else { continue }
            let quotes = symbols[candidate.symbol]!
            for i in range where quotes.times[i] >= staleBefore {
                keys.insert(ReferenceKey(symbol: candidate.symbol, window: window, index: i))
            }
        }
        return keys
    }

    /// The time whose last price is the reference of a key.
    func referenceTime(_ key: ReferenceKey) -> Int64 {
        symbols[key.symbol]!.times[key.index] - key.window * 1000
    }

    /// The last price at or before (quote time - window), cached per symbol, window and quote.
    mutating func reference(_ symbol: String, window: Int64, index: Int) throws -> Double? {
        let key = ReferenceKey(symbol: symbol, window: window, index: index)
        if let known = references[key] { return known }
        let price = try lookupReference(symbol, referenceTime(key))
        references[key] = .some(price)
        return price
    }

    /// The quotes a candidate judges: from its start, or from its symbol's first fresh quote.
    func judgedRange(_ candidate: Candidate) -> Swift.Range<Int>? {
        guard let quotes = symbols[candidate.symbol] else { return nil }
        if let start = candidate.startAt {
            guard let newest = quotes.times.last, newest >= start else { return nil }
            return (quotes.times.firstIndex { $0 >= start } ?? quotes.times.count)..<quotes.times.count
        }
        return quotes.firstNew..<quotes.times.count
    }

    /// Judges every candidate and finishes the report's lists.
    mutating func judgeAll() throws {
        for index in candidates.indices { try judge(index) }
        // An alert that fired on some quote of this run had history enough for it.
        let fired = Set(firings.map { candidates[$0.candidate].id })
        report.insufficientHistory = insufficient.subtracting(fired).sorted()
        // Notification ids follow the quotes' time, then the alert: the order people read them in.
        firings.sort { ($0.time, candidates[$0.candidate].id) < ($1.time, candidates[$1.candidate].id) }
    }

    /// Walks one alert through its symbol's quotes in time order.
    mutating func judge(_ index: Int) throws {
        var candidate = candidates[index]
        guard let range = judgedRange(candidate) else { return }
        let quotes = symbols[candidate.symbol]!
        var previous: Double? = candidate.startAt == nil && range.lowerBound > 0 ? quotes.prices[range.lowerBound - 1] : nil
        var judged = false
        for i in range {
            defer { previous = quotes.prices[i] }
            if quotes.times[i] < staleBefore { continue }  // too old to be the current price
            judged = true
            let referencePrice = try candidate.machine.condition.windowSeconds.flatMap { window in
                try reference(candidate.symbol, window: window, index: i)
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

    /// Only what changed: every indexed column written costs an index update.
    func alertChanges() -> [AlertChange] {
        candidates.compactMap { candidate in
            let machine = candidate.machine
            let rowChanged = machine.state != candidate.initial.state || machine.lastFiredAt != candidate.initial.lastFiredAt
            if let start = candidate.startAt {
                guard let newest = symbols[candidate.symbol]?.times.last, newest >= start else { return nil }
                return AlertChange(
                    id: candidate.id, state: machine.state, lastFiredAt: machine.lastFiredAt, started: true,
                    stateChanged: true, rowChanged: rowChanged)
            }
            guard rowChanged else { return nil }
            return AlertChange(
                id: candidate.id, state: machine.state, lastFiredAt: machine.lastFiredAt, started: false,
                stateChanged: machine.state != candidate.initial.state, rowChanged: true)
        }
    }

    /// Trailing rules whose peak or low moved (or was set by a first price): their
    /// `alert_trails` row, written apart from the alert's.
    func trailChanges() -> [(id: Int64, trailingFrom: Double)] {
        candidates.compactMap { candidate in
            guard let trail = candidate.machine.trailingFrom, trail != candidate.initial.trailingFrom else { return nil }
            return (candidate.id, trail)
        }
    }

    /// The symbols whose watermark moves, with the newest quote judged.
    func watermarks() -> [(symbol: String, observedAt: Int64)] {
        symbols.compactMap { symbol, quotes in
            guard let newest = quotes.times.last, newest > (quotes.watermark ?? Int64.min) else { return nil }
            return (symbol, newest)
        }
    }

    /// An alert's channels from their stored JSON array, decoded once per distinct list.
    mutating func channelList(_ stored: String) throws -> [String] {
        if let known = channelLists[stored] { return known }
        let channels = try AlertRecord.channels(stored)
        channelLists[stored] = channels
        return channels
    }
}
