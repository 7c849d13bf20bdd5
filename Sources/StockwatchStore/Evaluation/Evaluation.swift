import Foundation
import StockwatchModel

/// One evaluate run's working state, the same on both backends: which quotes each symbol
/// has, which alerts may change, and Swift's exact judgement of them (`AlertMachine`).
/// Each backend reads into it and writes its outcome in its own way, in one transaction
/// (SQLite/Evaluation, PostgreSQL/PostgresStore+Evaluation).
struct Evaluation {
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
        /// What the write compares against, not a second machine: a first evaluate of
        /// 1,000,000 new alerts holds them all at once. The state the alert starts from
        /// (derived, for `derivesLevels`), and the one stored.
        let initialState: AlertState
        let storedState: AlertState
        let initialTrail: Double?
        /// Firing kept aside (`firingAside`): its row says armed.
        let firingAside: Bool
        var machine: AlertMachine
    }

    /// What a notification needs of the alert that fired.
    struct FiredAlert {
        let id: Int64
        let userId: Int64
        let symbol: String
        /// The alert's channels as stored (a JSON array).
        let channels: String
    }

    /// What a notification is unique by, and what the inserts return to find each
    /// firing's id: an alert fires at most once per quote, and a symbol has one quote per
    /// time (`UNIQUE (alert_id, observed_at)`).
    struct FiringKey: Hashable {
        let alert: Int64
        let time: Int64
    }

    /// Each firing's notification id, by the firing's index, from the rows its insert
    /// returns (nil: the pair was already notified). The rows come back in the order of
    /// their batch, less the pairs skipped, so each is found by stepping on through the
    /// batch, where a dictionary by key was 2% of the near tick; a row out of that order
    /// is looked up by its key at the end. A firing's key is unique in a run.
    struct FiringIDs {
        private(set) var ids: [Int64?]
        /// The firings bound so far: a row returned is one of those.
        var bound = 0
        private var next = 0
        private var outOfOrder: [FiringKey: Int64] = [:]

        init(count: Int) {
            ids = Array(repeating: nil, count: count)
        }

        mutating func returned<Firings: RandomAccessCollection<Firing>>(_ id: Int64, alert: Int64, time: Int64, of firings: Firings) where Firings.Index == Int {
            var index = next
            while index < bound, firings[index].alert.id != alert || firings[index].time != time { index += 1 }
            if index < bound {
                ids[index] = id
                next = index + 1
            } else {
                outOfOrder[FiringKey(alert: alert, time: time)] = id
            }
        }

        mutating func resolve(_ firings: [Firing]) {
            guard !outOfOrder.isEmpty else { return }
            for index in firings.indices where ids[index] == nil {
                ids[index] = outOfOrder[FiringKey(alert: firings[index].alert.id, time: firings[index].time)]
            }
        }
    }

    struct Firing {
        let alert: FiredAlert
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

    /// An alert whose state must change. Its last firing is not written: readers take it
    /// from its newest notification (`AlertRecord.lastFiredAt`, `PostgresStore.lastFiredAt`).
    struct AlertChange {
        let id: Int64
        let state: AlertState
        let symbol: String
        /// It was firing kept aside (`firingAside`): its row says armed.
        var fromAside = false
        /// A derived level's stored state (`derivesState`): written, never kept aside.
        var derived = false
    }

    let now: Int64
    let staleBefore: Int64
    let prefilter: Bool
    var symbols: [String: SymbolQuotes] = [:]
    /// Reference price per symbol, basis and quote index, looked up once.
    var references: [ReferenceKey: Double?] = [:]
    /// Daily references per symbol, basis and market day, looked up once.
    var dailyReferences: [DailyKey: Double?] = [:]
    /// The last price of `symbol` at or before a time: the backend's lookup, for a
    /// reference not already in `references`.
    var lookupReference: (_ symbol: String, _ at: Int64) throws -> Double? = { _, _ in nil }
    /// A daily reference not already in `dailyReferences`: the backend's lookup.
    var lookupDaily: (_ key: DailyKey) throws -> Double? = { _ in nil }
    /// Per market clock (a time zone's name), the day a quote last looked up fell on, with
    /// its bounds: the symbols of one exchange share it, so a run computes a day once.
    var marketDays: [String: (market: MarketDay, start: Int64, end: Int64, day: String)] = [:]
    /// Each symbol's market clock.
    var marketZones: [String: TimeZone] = [:]
    /// The alerts read but not judged yet: judged a chunk at a time (`settle`), so that
    /// a first evaluate of 1,000,000 new alerts never holds them all.
    var candidates: [Candidate] = []
    var chunk = 20_000
    var firings: [Firing] = []
    /// What the judged candidates leave to write.
    var alertChanges: [AlertChange] = []
    /// New and resumed alerts that judged their first quotes and follow their symbol's
    /// watermark from now on, when the backend records each (`recordsStarts`; SQLite
    /// passes their rounds at once instead: 1,000,000 of them held 8 MB here).
    var startedAlerts: [Int64] = []
    var recordsStarts = true
    /// Whether the state of a level that re-arms at its level is derived from its symbol's
    /// last judged price rather than written (SQLite's migration v19, PostgreSQL's v13;
    /// `derivesStateSQL`).
    var derivesLevels = false
    /// Whether a `once` alert's end is kept aside in `alert_ends` rather than written to
    /// its row (SQLite's migration v23; `AlertRecord.endedAside`).
    var endsAside = false
    /// Whether a `rearm` alert that fires is kept firing aside, as a row of `alert_firing`,
    /// while its own row stays armed (SQLite's migration v25; `AlertRecord.firingAside`).
    var firingAside = false
    /// The alerts read firing aside: the seeks that pass them again as armed skip them.
    var asideAlerts = Set<Int64>()
    /// Derived alerts that judged to a state their symbol's last price cannot say: they
    /// start again after the newest quote, which is what an armed alert that follows the
    /// watermark does. Not expected (every started alert judged that price); kept exact.
    var restartedAlerts: [(id: Int64, startAt: Int64)] = []
    var trailChanges: [(id: Int64, trailingFrom: Double)] = []
    /// New and resumed alerts that could not start yet: no current quote (one not too old
    /// to judge) at or after their start. They start in a later run.
    var waitingStarters: [Int64] = []
    /// The earliest and latest start of each symbol's new and resumed alerts (a start of 0
    /// read as `staleBefore`), when the backend seeks them as it seeks the others (SQLite).
    var starterSpans: [String: (earliest: Int64, latest: Int64)] = [:]
    /// Whether judging counts the new alerts of symbols without fresh quotes as evaluated;
    /// false when the backend counts them without reading each one.
    var countsStarters = true
    var insufficient = Set<Int64>()
    /// Whether the report counts the alerts judged and lists the notifications written
    /// (`EvaluationStore.evaluate`'s `detailed`: a quiet run shows neither).
    var detailed = true
    /// Symbols with fresh quotes after their watermark.
    var batched = Set<String>()
    /// The batch's symbols (`evaluate_batch`'s keys) and the starters' (`evaluate_starts`'),
    /// in key order and in runs of `seekRun`, as each run's first and last (SQLite).
    var batchRuns: [(first: String, last: String)] = []
    var startRuns: [(first: String, last: String)] = []
    /// How many symbols have a `keyRank` (0..<keyRanks).
    var keyRanks = 0
    /// The reference bases (`Basis.name`) of the alerts that follow their symbol's
    /// watermark and of the new and resumed ones, when the backend seeks only those
    /// (SQLite; `Seek.basis`).
    var referenceBases = (following: Set<String>(), starting: Set<String>())
    var report = EvaluateReport()
    /// Channel lists decoded so far, by their stored JSON (most alerts share a few).
    var channelLists: [String: [String]] = [:]
    /// The list found last: most firings in a row share it, and comparing two short
    /// strings costs a tenth of hashing one (3.4M instructions at 10,000 firings).
    var lastChannelList: (stored: String, channels: [String])?

    /// Slack for comparing in SQL what Swift compares exactly: the seeks may return a few
    /// alerts too many (Swift then finds no change), never one too few.
    static let slack = "1e-9"

    init(now: Int64, staleBefore: Int64, prefilter: Bool) {
        self.now = now
        self.staleBefore = staleBefore
        self.prefilter = prefilter
    }

    /// Adds an alert read by a seek (the columns of `alerts`; nil for text no case matches).
    mutating func addCandidate(
        id: Int64, userId: Int64, symbol: String, kind: ConditionKind?, value: Double?, percent: Double?, windowSeconds: Int64?,
        trigger: AlertTrigger?, cooldownSeconds: Int64, rearmMarginPercent: Double, state: AlertState?, lastFiredAt: Int64?, channels: String,
        startAt: Int64?, snoozedUntil: Int64?, schedule: String?, timezone: String?, trailingFrom: Double?, firingAside: Bool = false
    ) throws {
        guard let kind, let condition = Condition(kind: kind, value: value, percent: percent, windowSeconds: windowSeconds),
              let trigger, let state
        else { throw StockwatchError.internal("alert \(id) has an unreadable rule") }
        var machine = AlertMachine(
            condition: condition, trigger: trigger, cooldownSeconds: cooldownSeconds, rearmMarginPercent: rearmMarginPercent,
            state: firingAside ? .firing : state, lastFiredAt: lastFiredAt, snoozedUntil: snoozedUntil, trailingFrom: trailingFrom)
        if derivesLevels, startAt == nil, state == .armed, Self.derivesState(machine),
           let judged = symbols[symbol]?.judged, Self.levelHolds(condition, price: judged) {
            machine.state = .firing
        }
        if let schedule {
            // Checked when the alert was added; the zone is the user's (UTC if unknown here).
            machine.schedule = try? WeeklySchedule.parse(schedule, option: "schedule")
            machine.zone = timezone.flatMap(TimeZone.init(identifier:)) ?? .gmt
        }
        candidates.append(Candidate(
            id: id, userId: userId, symbol: symbol, channels: channels, startAt: startAt.map { $0 == 0 ? staleBefore : $0 },
            initialState: machine.state, storedState: state, initialTrail: machine.trailingFrom, firingAside: firingAside, machine: machine))
    }

    /// A level that re-arms at its level, whose state its symbol's last judged price says
    /// (`derivesStateSQL` is the same test in SQL).
    static func derivesState(_ machine: AlertMachine) -> Bool {
        guard machine.trigger == .rearm, machine.rearmMarginPercent == 0 else { return false }
        switch machine.condition {
        case .above, .below: return true
        default: return false
        }
    }

    /// Whether a price holds a level's rule: `AlertMachine.judge`'s test for `above` and
    /// `below`.
    static func levelHolds(_ condition: Condition, price: Double) -> Bool {
        switch condition {
        case let .above(level): price >= level
        case let .below(level): price <= level
        default: false
        }
    }

    /// Judges the candidates read so far, keeps what they change, and lets them go.
    mutating func settle() throws {
        // A symbol's candidates mostly come together: its quotes are looked up once for them.
        var symbol: String?
        var quotes: SymbolQuotes?
        var isBatched = false
        for index in candidates.indices {
            let name = candidates[index].symbol
            if name != symbol {
                symbol = name
                quotes = symbols[name]
                isBatched = batched.contains(name)
            }
            if let quotes { try judge(index, quotes: quotes, batched: isBatched) }
            collect(candidates[index], newest: quotes?.times.last, judged: quotes?.judgedNow)
        }
        candidates.removeAll(keepingCapacity: true)
    }

    /// Judges every candidate left and finishes the report's lists.
    mutating func judgeAll() throws {
        try settle()
        // An alert that fired on some quote of this run had history enough for it.
        let fired = Set(firings.map(\.alert.id))
        report.insufficientHistory = insufficient.subtracting(fired).sorted()
        // Notification ids follow the quotes' time, then the alert: the order people read them in.
        // Sorted as keys, each firing moved once: sorting the firings themselves moved
        // them about (1.6% of the near tick's instructions). Already in order: kept.
        let keys = firings.indices.map { (time: firings[$0].time, alert: firings[$0].alert.id, index: $0) }
        guard !zip(keys, keys.dropFirst()).allSatisfy({ ($0.time, $0.alert) < ($1.time, $1.alert) }) else { return }
        firings = keys.sorted { ($0.time, $0.alert) < ($1.time, $1.alert) }.map { firings[$0.index] }
    }

    /// Walks one alert through its symbol's quotes in time order.
    mutating func judge(_ index: Int, quotes: SymbolQuotes, batched: Bool) throws {
        var candidate = candidates[index]
        guard let range = judgedRange(candidate, in: quotes) else { return }
        var previous: Double? = candidate.startAt == nil && range.lowerBound > 0 ? quotes.prices[range.lowerBound - 1] : nil
        var judged = false
        for i in range {
            defer { previous = quotes.prices[i] }
            if quotes.times[i] < staleBefore { continue }  // too old to be the current price
            judged = true
            let referencePrice = try Basis(candidate.machine.condition).flatMap { basis in
                try reference(candidate.symbol, basis: basis, index: i)
            }
            let outcome = candidate.machine.judge(
                symbol: candidate.symbol, price: quotes.prices[i], time: quotes.times[i], previous: previous, reference: referencePrice)
            switch outcome {
            case .quiet, .suppressed: break
            case .insufficientHistory: insufficient.insert(candidate.id)
            case let .notify(message):
                let alert = FiredAlert(id: candidate.id, userId: candidate.userId, symbol: candidate.symbol, channels: candidate.channels)
                firings.append(Firing(alert: alert, price: quotes.prices[i], time: quotes.times[i], message: message))
            }
            if candidate.machine.state == .fired { break }
        }
        if judged, candidate.startAt != nil, !batched, countsStarters { report.evaluated += 1 }
        candidates[index] = candidate
    }

    /// Keeps what a judged candidate must write. Only what changed: every indexed column
    /// written costs an index update, every row a page. A firing alone writes nothing to
    /// its alert: its notification is its last firing.
    /// `newest`: the time of its symbol's newest quote; `judged`: its last price judged as
    /// current, after this run.
    mutating func collect(_ candidate: Candidate, newest: Int64?, judged: Double?) {
        let machine = candidate.machine
        if let trail = machine.trailingFrom, trail != candidate.initialTrail {
            // A moved peak or low (or one set by a first price): its `alert_trails` row.
            trailChanges.append((candidate.id, trail))
        }
        if let start = candidate.startAt {
            // It starts once it has judged a current quote: one too old to judge does not
            // count (judging it changed nothing), so a started alert has judged its
            // symbol's last current price, which a derived state rests on.
            guard let newest, newest >= max(start, staleBefore) else {
                waitingStarters.append(candidate.id)
                return
            }
            if recordsStarts { startedAlerts.append(candidate.id) }
        }
        guard derivesLevels, Self.derivesState(machine) else {
            guard machine.state != candidate.initialState else { return }
            alertChanges.append(AlertChange(id: candidate.id, state: machine.state, symbol: candidate.symbol, fromAside: candidate.firingAside))
            return
        }
        // Stored `armed` where the last judged price says the state, `firing` where it
        // cannot; a stored `firing` that still fires stays as written.
        let derived = judged.map { Self.levelHolds(machine.condition, price: $0) } ?? false
        let stored: AlertState
        switch (machine.state, derived) {
        case (.firing, _) where candidate.storedState == .firing: return
        case (.firing, true), (.armed, false): stored = .armed
        case (.armed, true):
            restartedAlerts.append((candidate.id, (newest ?? now) + 1))
            return
        default: stored = machine.state
        }
        guard stored != candidate.storedState else { return }
        alertChanges.append(AlertChange(id: candidate.id, state: stored, symbol: candidate.symbol, derived: true))
    }

    /// An alert's channels from their stored JSON array, decoded once per distinct list.
    mutating func channelList(_ stored: String) throws -> [String] {
        if let last = lastChannelList, last.stored == stored { return last.channels }
        let channels = try channelLists[stored] ?? AlertRecord.channels(stored)
        channelLists[stored] = channels
        lastChannelList = (stored, channels)
        return channels
    }
}
