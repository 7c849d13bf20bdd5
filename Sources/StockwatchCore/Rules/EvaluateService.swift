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
/// Speed comes from doing per symbol what can be shared: the active alerts are read in one
/// scan, each symbol's new quotes in one indexed query, and only what changed is written
/// (alerts whose state moved, notifications, deliveries, one watermark per symbol).
public struct EvaluateService: Sendable {
    let database: AppDatabase
    let config: Config

    public init(database: AppDatabase, config: Config) {
        self.database = database
        self.config = config
    }

    public func run(now: Date = Date()) throws(StockwatchError) -> EvaluateReport {
        let staleBefore = now.milliseconds - config.maxAgeSeconds * 1000
        return try database.write { db in
            var evaluation = Evaluation(now: now.milliseconds, staleBefore: staleBefore)
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
    /// One active alert as read for this run.
    struct Candidate {
        let id: Int64
        let userId: Int64
        let channels: String
        /// Where a new or resumed alert starts (nil: it follows its symbol's watermark).
        let startAt: Int64?
        var machine: AlertMachine
    }

    /// One firing to write.
    struct Firing {
        let alert: Int
        let quote: Int64
        let price: Double
        let time: Int64
        let message: String
        let symbol: String
    }

    let now: Int64
    let staleBefore: Int64
    var candidates: [Candidate] = []
    var bySymbol: [String: [Int]] = [:]
    var firings: [Firing] = []
    var changed: [Int] = []
    var report = EvaluateReport()

    init(now: Int64, staleBefore: Int64) {
        self.now = now
        self.staleBefore = staleBefore
    }

    mutating func run(_ db: Database) throws -> EvaluateReport {
        try readAlerts(db)
        var progress: [String: Int64] = [:]
        let progressRows = try Row.fetchCursor(db, sql: "SELECT symbol, observed_at FROM evaluation_progress")
        while let row = try progressRows.next() { progress[row[0]] = row[1] }
        let quotes = try db.cachedStatement(sql: "SELECT id, price, observed_at FROM quotes WHERE symbol = ? AND observed_at >= ? ORDER BY observed_at")
        let reference = try db.cachedStatement(sql: "SELECT price FROM quotes WHERE symbol = ? AND observed_at <= ? ORDER BY observed_at DESC LIMIT 1")
        let saveProgress = try db.cachedStatement(sql: """
            INSERT INTO evaluation_progress (symbol, observed_at) VALUES (?, ?)
            ON CONFLICT (symbol) DO UPDATE SET observed_at = excluded.observed_at
            """)
        var insufficient = Set<Int64>()
        for (symbol, members) in bySymbol {
            let watermark = progress[symbol]
            // Followers need the watermark's quote as their previous price; starters their start.
            var from = Int64.max
            for index in members {
                let start = candidates[index].startAt.map { $0 == 0 ? staleBefore : $0 } ?? watermark ?? staleBefore
                from = min(from, start)
            }
            var ids: [Int64] = []
            var prices: [Double] = []
            var times: [Int64] = []
            quotes.setUncheckedArguments([symbol, from])
            let cursor = try Row.fetchCursor(quotes)
            while let row = try cursor.next() {
                ids.append(row[0])
                prices.append(row[1])
                times.append(row[2])
            }
            guard let newest = times.last else { continue }
            if let watermark, newest <= watermark, !members.contains(where: { candidates[$0].startAt != nil }) { continue }

            var references: [Int64: [Double?]] = [:]
            for index in members {
                var candidate = candidates[index]
                let before = candidate.machine
                let first: Int
                var previous: Double?
                if let startAt = candidate.startAt {
                    let start = startAt == 0 ? staleBefore : startAt
                    guard newest >= start else { continue }
                    first = times.firstIndex { $0 >= start } ?? times.count
                } else {
                    let after = watermark ?? (staleBefore - 1)
                    first = times.firstIndex { $0 > after } ?? times.count
                    if first > 0 { previous = prices[first - 1] }
                }
                var judged = false
                var i = first
                while i < times.count {
                    defer { previous = prices[i]; i += 1 }
                    if times[i] < staleBefore { continue }  // too old to be the current price
                    judged = true
                    var referencePrice: Double?
                    if let window = candidate.machine.condition.windowSeconds {
                        if references[window] == nil { references[window] = Array(repeating: nil, count: times.count) }
                        if let known = references[window]![i] {
                            referencePrice = known
                        } else {
                            reference.setUncheckedArguments([symbol, times[i] - window * 1000])
                            referencePrice = try Double.fetchOne(reference)
                            references[window]![i] = referencePrice
                        }
                    }
                    let outcome = candidate.machine.judge(symbol: symbol, price: prices[i], time: times[i], previous: previous, reference: referencePrice)
                    switch outcome {
                    case .quiet, .suppressed: break
                    case .insufficientHistory: insufficient.insert(candidate.id)
                    case let .notify(message):
                        firings.append(Firing(alert: index, quote: ids[i], price: prices[i], time: times[i], message: message, symbol: symbol))
                    }
                    if candidate.machine.state == .fired { break }
                }
                if judged { report.evaluated += 1 }
                candidates[index] = candidate
                if candidate.machine != before || candidate.startAt != nil { changed.append(index) }
            }
            if newest > (watermark ?? Int64.min) {
                try saveProgress.execute(arguments: [symbol, newest])
            }
        }
        report.insufficientHistory = insufficient.sorted()
        try write(db)
        return report
    }

    /// One scan of the active alerts; expired ones are marked so and left out.
    mutating func readAlerts(_ db: Database) throws {
        let expire = try db.cachedStatement(sql: "UPDATE alerts SET state = 'expired' WHERE id = ?")
        let cursor = try Row.fetchCursor(db, sql: """
            SELECT id, user_id, symbol, kind, value, percent, window_seconds, trigger, cooldown_seconds,
                rearm_margin_percent, state, last_fired_at, start_at, expires_at, channels
            FROM alerts WHERE state IN ('armed', 'firing')
            """)
        while let row = try cursor.next() {
            let id: Int64 = row[0]
            if let expiresAt = row[13] as Int64?, expiresAt <= now {
                try expire.execute(arguments: [id])
                report.expired.append(id)
                continue
            }
            guard let kind = ConditionKind(rawValue: row[3]),
                let condition = Condition(kind: kind, value: row[4], percent: row[5], windowSeconds: row[6]),
                let trigger = AlertTrigger(rawValue: row[7]),
                let state = AlertState(rawValue: row[10])
            else { throw StockwatchError.internal("alert \(id) has an unreadable rule") }
            let machine = AlertMachine(
                condition: condition, trigger: trigger, cooldownSeconds: row[8], rearmMarginPercent: row[9],
                state: state, lastFiredAt: row[11])
            let symbol: String = row[2]
            bySymbol[symbol, default: []].append(candidates.count)
            candidates.append(Candidate(id: id, userId: row[1], channels: row[14], startAt: row[12], machine: machine))
        }
    }

    /// Only what changed: alerts whose state moved, and the firings with their deliveries.
    mutating func write(_ db: Database) throws {
        let updateAlert = try db.cachedStatement(sql: "UPDATE alerts SET state = ?, last_fired_at = ?, start_at = NULL WHERE id = ?")
        for index in changed {
            let candidate = candidates[index]
            try updateAlert.execute(arguments: [candidate.machine.state.rawValue, candidate.machine.lastFiredAt, candidate.id])
        }
        guard !firings.isEmpty else { return }
        let insertNotification = try db.cachedStatement(sql: """
            INSERT INTO notifications (alert_id, user_id, quote_id, symbol, price, observed_at, message, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id, quote_id) DO NOTHING
            """)
        let insertDelivery = try db.cachedStatement(sql: """
            INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at)
            VALUES (?, ?, 'pending', 0, ?, ?, ?)
            """)
        let names = try AlertService.userNames(db)
        var channelLists: [String: [String]] = [:]
        let decoder = JSONDecoder()
        for firing in firings {
            let candidate = candidates[firing.alert]
            try insertNotification.execute(arguments: [
                candidate.id, candidate.userId, firing.quote, firing.symbol, firing.price, firing.time, firing.message, now,
            ])
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
                try insertDelivery.execute(arguments: [notificationID, channel, now, now, now])
            }
            report.notifications.append(
                EvaluateReport.Notification(
                    id: notificationID, alertId: candidate.id, user: names[candidate.userId] ?? "?", symbol: firing.symbol,
                    price: firing.price, observedAt: Date(milliseconds: firing.time), message: firing.message, channels: channels))
        }
    }
}
