import Foundation
import GRDB

/// `stockwatch evaluate`: judges every active alert against the quotes of its symbol that
/// it has not judged yet, and writes each firing as a notification with one pending
/// delivery per channel.
///
/// All of it is one IMMEDIATE transaction: the notifications, their deliveries, the alerts'
/// new states and the symbols' watermarks are committed together or not at all, and two
/// evaluate processes run one after the other, the second finding nothing new.
/// UNIQUE (alert_id, quote_id) keeps a duplicate out even so.
///
/// Speed comes from doing per symbol what can be shared and leaving the rest to SQLite:
/// each symbol's new quotes are read once, summarised (lowest and highest price, and for
/// rise/fall the range of reference prices per window) into temporary tables, and one
/// scan returns only the alerts that those ranges could fire or re-arm. Swift judges those
/// exactly; an alert the scan leaves out could not have changed. Only what changed is
/// written (alerts whose state moved, notifications, deliveries, one watermark per symbol).
public struct EvaluateService: Sendable {
    let database: AppDatabase
    let config: Config

    public init(database: AppDatabase, config: Config) {
        self.database = database
        self.config = config
    }

    /// `prefilter: false` judges every active alert in Swift: tests compare both ways.
    public func run(now: Date = Date(), prefilter: Bool = true) throws(StockwatchError) -> EvaluateReport {
        let staleBefore = now.milliseconds - config.maxAgeSeconds * 1000
        return try database.write { db in
            var evaluation = Evaluation(now: now.milliseconds, staleBefore: staleBefore, prefilter: prefilter)
            return try evaluation.run(db)
        }
    }
}

/// What evaluate did, for `--json`, `-v` and tests.
public struct EvaluateReport: Encodable, Sendable {
    public struct Notification: Encodable, Sendable, Equatable {
        public var id: Int64
        public var alertId: Int64
        public var user: String
        public var symbol: String
        public var price: Double
        public var observedAt: Date
        public var message: String
        public var channels: [String]

        enum CodingKeys: String, CodingKey {
            case id, user, symbol, price, message, channels
            case alertId = "alert_id"
            case observedAt = "observed_at"
        }
    }

    /// Active alerts that judged at least one fresh quote.
    public var evaluated = 0
    public var notifications: [Notification] = []
    /// Rise and fall alerts with no quote as old as their window, ascending.
    public var insufficientHistory: [Int64] = []
    /// Alerts that passed their `expires_at` in this run.
    public var expired: [Int64] = []

    enum CodingKeys: String, CodingKey {
        case evaluated, notifications
        case insufficientHistory = "insufficient_history"
    }
}

/// One run's working state; lives inside the write transaction.
private struct Evaluation {
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
        /// Where a new or resumed alert starts (nil: it follows its symbol's watermark).
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

    /// Slack for comparing in SQL what Swift compares exactly: the scan may return a few
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
        report.insufficientHistory = insufficient.sorted()
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
        let starts = try RawStatement(db, """
            SELECT symbol, min(start_at) FROM alerts WHERE start_at IS NOT NULL AND state IN ('armed', 'firing') GROUP BY symbol
            """)
        while try starts.step() {
            let symbol = starts.string(0)
            let start = starts.int64(1) == 0 ? staleBefore : starts.int64(1)
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

    /// Fills the temporary tables the candidate scan joins: per symbol the price range of
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
                insert.bind(3, nil as Int64?)
                insert.bind(4, nil as Int64?)
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

    static let columns = """
        a.id, a.user_id, a.symbol, a.kind, a.value, a.percent, a.window_seconds, a.trigger, a.cooldown_seconds,
        a.rearm_margin_percent, a.state, a.last_fired_at, a.channels, a.start_at
        """

    /// Alerts that follow their symbol's watermark and whose rule the new price range could
    /// fire or re-arm (see `slack`), then all new and resumed alerts.
    mutating func readCandidates(_ db: Database) throws {
        guard prefilter else {
            try readAlerts(db, """
                SELECT \(Self.columns) FROM temp.evaluate_batch b CROSS JOIN alerts a ON a.symbol = b.symbol
                WHERE a.state IN ('armed', 'firing') AND a.start_at IS NULL
                """)
            try readStarters(db)
            return
        }
        let s = Self.slack
        // Each part seeks one partial index per symbol (or window) with new prices: armed
        // alerts by the level range the prices reached, firing ones to test re-arming.
        let rising = "temp.evaluate_batch b CROSS JOIN alerts a INDEXED BY alerts_rising ON a.symbol = b.symbol AND a.kind IN ('above', 'crosses_above')"
        let falling = "temp.evaluate_batch b CROSS JOIN alerts a INDEXED BY alerts_falling ON a.symbol = b.symbol AND a.kind IN ('below', 'crosses_below')"
        let changes = """
            temp.evaluate_references r JOIN temp.evaluate_batch b ON b.symbol = r.symbol
            CROSS JOIN alerts a INDEXED BY alerts_changes ON a.symbol = r.symbol AND a.window_seconds IS NOT NULL
            """
        try readAlerts(db, """
            SELECT \(Self.columns) FROM \(rising) WHERE a.state = 'armed' AND a.value <= b.high * (1 + \(s)) AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(rising) WHERE a.state = 'firing'
                AND b.low < a.value * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s)) AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(falling) WHERE a.state = 'armed' AND a.value >= b.low * (1 - \(s)) AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(falling) WHERE a.state = 'firing'
                AND b.high > a.value * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s)) AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(changes) WHERE a.kind = 'rise' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (b.high / (r.low * (1 - \(s))) - 1) * 100 END AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(changes) WHERE a.kind = 'rise' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.low < r.high * (1 + a.percent / 100.0) * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s)))
                AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(changes) WHERE a.kind = 'fall' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (1 - b.low / (r.high * (1 + \(s)))) * 100 END AND a.start_at IS NULL
            UNION ALL
            SELECT \(Self.columns) FROM \(changes) WHERE a.kind = 'fall' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.high > r.low * (1 - a.percent / 100.0) * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s)))
                AND a.start_at IS NULL
            """)
        try readStarters(db)
    }

    /// New and resumed alerts, judged from their own start; few at any time.
    mutating func readStarters(_ db: Database) throws {
        try readAlerts(db, "SELECT \(Self.columns) FROM alerts a WHERE a.start_at IS NOT NULL AND a.state IN ('armed', 'firing')")
    }

    mutating func readAlerts(_ db: Database, _ sql: String) throws {
        let rows = try RawStatement(db, sql)
        while try rows.step() {
            let id = rows.int64(0)
            guard let kind = ConditionKind(rawValue: rows.string(3)),
                let condition = Condition(kind: kind, value: rows.optionalDouble(4), percent: rows.optionalDouble(5), windowSeconds: rows.optionalInt64(6)),
                let trigger = AlertTrigger(rawValue: rows.string(7)),
                let state = AlertState(rawValue: rows.string(10))
            else { throw StockwatchError.internal("alert \(id) has an unreadable rule") }
            let machine = AlertMachine(
                condition: condition, trigger: trigger, cooldownSeconds: rows.int64(8), rearmMarginPercent: rows.double(9),
                state: state, lastFiredAt: rows.optionalInt64(11))
            candidates.append(Candidate(
                id: id, userId: rows.int64(1), symbol: rows.string(2), channels: rows.string(12), startAt: rows.optionalInt64(13),
                initial: machine, machine: machine))
        }
    }

    /// Walks one alert through its symbol's quotes in time order.
    mutating func judge(_ index: Int, _ db: Database) throws {
        var candidate = candidates[index]
        guard let quotes = symbols[candidate.symbol] else { return }
        let first: Int
        var previous: Double?
        if let startAt = candidate.startAt {
            let start = startAt == 0 ? staleBefore : startAt
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

    /// Only what changed: alerts whose state moved, the firings with their deliveries, and
    /// the watermarks of symbols with newer quotes.
    mutating func write(_ db: Database) throws {
        // Only the columns that changed: every indexed column written costs an index update.
        let updateState = try RawStatement(db, "UPDATE alerts SET state = ?, last_fired_at = ? WHERE id = ?")
        let updateFired = try RawStatement(db, "UPDATE alerts SET last_fired_at = ? WHERE id = ?")
        let updateStarter = try RawStatement(db, "UPDATE alerts SET state = ?, last_fired_at = ?, start_at = NULL WHERE id = ?")
        for candidate in candidates {
            let machine = candidate.machine
            if let start = candidate.startAt {
                guard let newest = symbols[candidate.symbol]?.times.last, newest >= (start == 0 ? staleBefore : start) else { continue }
                updateStarter.bind(1, machine.state.rawValue)
                updateStarter.bind(2, machine.lastFiredAt)
                updateStarter.bind(3, candidate.id)
                try updateStarter.execute()
            } else if machine.state != candidate.initial.state {
                updateState.bind(1, machine.state.rawValue)
                updateState.bind(2, machine.lastFiredAt)
                updateState.bind(3, candidate.id)
                try updateState.execute()
            } else if machine.lastFiredAt != candidate.initial.lastFiredAt {
                updateFired.bind(1, machine.lastFiredAt)
                updateFired.bind(2, candidate.id)
                try updateFired.execute()
            }
        }

        let saveProgress = try RawStatement(db, """
            INSERT INTO evaluation_progress (symbol, observed_at) VALUES (?, ?)
            ON CONFLICT (symbol) DO UPDATE SET observed_at = excluded.observed_at
            """)
        for (symbol, quotes) in symbols {
            guard let newest = quotes.times.last, newest > (quotes.watermark ?? Int64.min) else { continue }
            saveProgress.bind(1, symbol)
            saveProgress.bind(2, newest)
            try saveProgress.execute()
        }

        guard !firings.isEmpty else { return }
        // Notification ids follow the quotes' time, then the alert: the order people read them in.
        firings.sort { ($0.time, candidates[$0.candidate].id) < ($1.time, candidates[$1.candidate].id) }
        let insertNotification = try RawStatement(db, """
            INSERT INTO notifications (alert_id, user_id, quote_id, symbol, price, observed_at, message, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id, quote_id) DO NOTHING
            """)
        let insertDelivery = try RawStatement(db, """
            INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at)
            VALUES (?, ?, 'pending', 0, ?, ?, ?)
            """)
        let names = try AlertService.userNames(db)
        var channelLists: [String: [String]] = [:]
        let decoder = JSONDecoder()
        for firing in firings {
            let candidate = candidates[firing.candidate]
            insertNotification.bind(1, candidate.id)
            insertNotification.bind(2, candidate.userId)
            insertNotification.bind(3, firing.quote)
            insertNotification.bind(4, candidate.symbol)
            insertNotification.bind(5, firing.price)
            insertNotification.bind(6, firing.time)
            insertNotification.bind(7, firing.message)
            insertNotification.bind(8, now)
            try insertNotification.execute()
            guard db.changesCount > 0 else { continue }  // already notified: never twice
            let notificationID = db.lastInsertedRowID
            let channels: [String]
            if let known = channelLists[candidate.channels] {
                channels = known
            } else {
                channels = try decoder.decode([String].self, from: Data(candidate.channels.utf8))
                channelLists[candidate.channels] = channels
            }
            for channel in channels {
                insertDelivery.bind(1, notificationID)
                insertDelivery.bind(2, channel)
                insertDelivery.bind(3, now)
                insertDelivery.bind(4, now)
                insertDelivery.bind(5, now)
                try insertDelivery.execute()
            }
            report.notifications.append(
                EvaluateReport.Notification(
                    id: notificationID, alertId: candidate.id, user: names[candidate.userId] ?? "?", symbol: candidate.symbol,
                    price: firing.price, observedAt: Date(milliseconds: firing.time), message: firing.message, channels: channels))
        }
    }
}
