import Foundation
import GRDB
import StockwatchModel
import StockwatchStore

/// `stockwatch status`: what a monitoring check needs, and whether anything needs a person.
public struct StatusService: Sendable {
    let database: AppDatabase
    let config: Config

    public init(database: AppDatabase, config: Config) {
        self.database = database
        self.config = config
    }

    /// Deliveries due longer ago than this mean notify is not running.
    static let overdueAfter: TimeInterval = 600
    /// Dead deliveries are a problem for this long, then only history.
    static let deadWindow: TimeInterval = 86_400

    public func run(now: Date = Date()) throws(StockwatchError) -> StatusReport {
        let initial = StatusReport(database: .init(path: database.path, bytes: Self.fileSize(database.path) + Self.fileSize(database.path + "-wal")))
        let watched = try FetchService(database: database, config: config, environment: [:]).watchedSymbols().map(\.text)
        let maxAge = config.maxAgeSeconds
        let configured = config.providers.keys.sorted()
        let nowMS = now.milliseconds
        var report = try database.read { db in
            var report = initial
            let states = Dictionary(uniqueKeysWithValues: try ProviderStateRecord.fetchAll(db).map { ($0.provider, $0) })
            report.providers = configured.map { name in
                let state = states[name]
                return StatusReport.Provider(
                    name: name, lastSuccessAt: state?.lastSuccessAt, lastErrorAt: state?.lastErrorAt, lastError: state?.lastError,
                    consecutiveFailures: state?.consecutiveFailures ?? 0,
                    blockedUntil: (state?.blockedUntil).flatMap { $0 > now ? $0 : nil }, blockedReason: (state?.blockedUntil ?? .distantPast) > now ? state?.blockedReason : nil)
            }
            let newest = try Row.fetchAll(
                db, sql: "SELECT symbol, max(observed_at) AS newest FROM quotes WHERE symbol IN (SELECT value FROM json_each(?)) GROUP BY symbol",
                arguments: [JSONOutput.encode(watched)])
            var newestBySymbol: [String: Int64] = [:]
            for row in newest { newestBySymbol[row["symbol"]] = row["newest"] }
            report.staleSymbols = watched.sorted().compactMap { symbol in
                let newest = newestBySymbol[symbol]
                guard newest.map({ nowMS - $0 > maxAge * 1000 }) ?? true else { return nil }
                return StatusReport.StaleSymbol(symbol: symbol, newestObservedAt: newest.map { Date(milliseconds: $0) })
            }
            for row in try Row.fetchAll(db, sql: "SELECT status, count(*) AS n FROM deliveries GROUP BY status") {
                report.deliveries.counts[row["status"]] = row["n"]
            }
            report.deliveries.overdue = try Int.fetchOne(
                db, sql: """
                    SELECT (SELECT count(*) FROM deliveries WHERE status IN ('pending', 'retry') AND next_attempt_at < :limit)
                         + (SELECT count(*) FROM deliveries WHERE status = 'sending' AND lease_until < :limit)
                    """, arguments: ["limit": nowMS - Int64(Self.overdueAfter * 1000)]) ?? 0
            report.deliveries.recentlyDead = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM deliveries WHERE status = 'dead' AND updated_at >= ?", arguments: [nowMS - Int64(Self.deadWindow * 1000)]) ?? 0
            report.recentErrors = try Row.fetchAll(
                db, sql: """
                    SELECT a.delivery_id, d.channel, a.attempt, a.finished_at, a.outcome, a.error FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
                    WHERE a.outcome <> 'sent' ORDER BY a.id DESC LIMIT 10
                    """
            ).map {
                StatusReport.AttemptError(deliveryId: $0["delivery_id"], channel: $0["channel"], attempt: $0["attempt"], at: Date(milliseconds: $0["finished_at"]), outcome: $0["outcome"], error: $0["error"])
            }
            let tokens = Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT account, expires_at FROM access_tokens").map { row -> (String, Int64) in (row["account"], row["expires_at"]) })
            report.fcm = config.channels.values.filter { $0.type == .fcm }.sorted { $0.name < $1.name }.map { channel in
                let account = channel.serviceAccountFile.flatMap { try? ServiceAccount.load(path: $0) }
                return StatusReport.FCMToken(
                    channel: channel.name, account: account?.clientEmail,
                    tokenExpiresAt: (account.flatMap { tokens[$0.cacheKey] }).map { Date(milliseconds: $0) },
                    problem: account == nil ? "cannot read service_account_file \(channel.serviceAccountFile ?? "")" : nil)
            }
            return report
        }
        report.problems = problems(report)
        return report
    }

    /// What makes `status` exit 1; each a line naming the culprit.
    private func problems(_ report: StatusReport) -> [String] {
        var problems: [String] = []
        for provider in report.providers {
            if let error = provider.lastErrorAt, error > (provider.lastSuccessAt ?? .distantPast) {
                problems.append("provider \(provider.name): last request failed: \(provider.lastError ?? "unknown error")")
            }
        }
        for stale in report.staleSymbols {
            problems.append("symbol \(stale.symbol): " + (stale.newestObservedAt.map { "newest quote is from \(ISO8601DateFormatter().string(from: $0)), older than max_age" } ?? "no quote yet"))
        }
        if report.deliveries.overdue > 0 { problems.append("\(report.deliveries.overdue) deliveries are overdue by over 10 minutes: is notify (or tick) running?") }
        if report.deliveries.recentlyDead > 0 { problems.append("\(report.deliveries.recentlyDead) deliveries gave up in the last 24 hours (see 'stockwatch history')") }
        for token in report.fcm { if let problem = token.problem { problems.append("channel \(token.channel): \(problem)") } }
        return problems
    }

    private static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}

public struct StatusReport: Encodable, Sendable {
    public struct Provider: Encodable, Sendable {
        public var name: String
        public var lastSuccessAt: Date?
        public var lastErrorAt: Date?
        public var lastError: String?
        public var consecutiveFailures: Int
        public var blockedUntil: Date?
        public var blockedReason: String?
        enum CodingKeys: String, CodingKey {
            case name, lastError = "last_error", lastSuccessAt = "last_success_at", lastErrorAt = "last_error_at"
            case consecutiveFailures = "consecutive_failures", blockedUntil = "blocked_until", blockedReason = "blocked_reason"
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(lastSuccessAt, forKey: .lastSuccessAt)
            try c.encode(lastErrorAt, forKey: .lastErrorAt)
            try c.encode(lastError, forKey: .lastError)
            try c.encode(consecutiveFailures, forKey: .consecutiveFailures)
            try c.encode(blockedUntil, forKey: .blockedUntil)
            try c.encode(blockedReason, forKey: .blockedReason)
        }
    }
    public struct StaleSymbol: Encodable, Sendable {
        public var symbol: String
        public var newestObservedAt: Date?
        enum CodingKeys: String, CodingKey { case symbol, newestObservedAt = "newest_observed_at" }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(symbol, forKey: .symbol)
            try c.encode(newestObservedAt, forKey: .newestObservedAt)
        }
    }
    public struct Deliveries: Encodable, Sendable {
        public var counts: [String: Int] = [:]
        public var overdue = 0
        public var recentlyDead = 0
        public func count(_ status: DeliveryStatus) -> Int { counts[status.rawValue] ?? 0 }
        enum CodingKeys: String, CodingKey { case overdue, recentlyDead = "recently_dead" }
        /// Every status appears, with 0 when there is none.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: DynamicKey.self)
            for status in DeliveryStatus.allCases { try c.encode(count(status), forKey: DynamicKey(status.rawValue)) }
            try c.encode(overdue, forKey: DynamicKey("overdue"))
            try c.encode(recentlyDead, forKey: DynamicKey("recently_dead"))
        }
    }
    public struct AttemptError: Encodable, Sendable {
        public var deliveryId: Int64
        public var channel: String
        public var attempt: Int
        public var at: Date
        public var outcome: String
        public var error: String?
        enum CodingKeys: String, CodingKey { case deliveryId = "delivery_id", channel, attempt, at, outcome, error }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(deliveryId, forKey: .deliveryId)
            try c.encode(channel, forKey: .channel)
            try c.encode(attempt, forKey: .attempt)
            try c.encode(at, forKey: .at)
            try c.encode(outcome, forKey: .outcome)
            try c.encode(error, forKey: .error)
        }
    }
    public struct FCMToken: Encodable, Sendable {
        public var channel: String
        public var account: String?
        public var tokenExpiresAt: Date?
        public var problem: String?
        enum CodingKeys: String, CodingKey { case channel, account, tokenExpiresAt = "token_expires_at", problem }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(channel, forKey: .channel)
            try c.encode(account, forKey: .account)
            try c.encode(tokenExpiresAt, forKey: .tokenExpiresAt)
            try c.encode(problem, forKey: .problem)
        }
    }
    public struct Database: Encodable, Sendable {
        public var path: String
        public var bytes: Int64
    }

    public var providers: [Provider] = []
    public var staleSymbols: [StaleSymbol] = []
    public var deliveries = Deliveries()
    public var recentErrors: [AttemptError] = []
    public var fcm: [FCMToken] = []
    public var database: Database
    public var problems: [String] = []

    public var healthy: Bool { problems.isEmpty }
    public var exitStatus: ExitStatus { healthy ? .success : .attention }

    init(database: Database) { self.database = database }

    enum CodingKeys: String, CodingKey {
        case providers, deliveries, fcm, database, problems, healthy
        case staleSymbols = "stale_symbols", recentErrors = "recent_errors"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(healthy, forKey: .healthy)
        try c.encode(problems, forKey: .problems)
        try c.encode(providers, forKey: .providers)
        try c.encode(staleSymbols, forKey: .staleSymbols)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(recentErrors, forKey: .recentErrors)
        try c.encode(fcm, forKey: .fcm)
        try c.encode(database, forKey: .database)
    }
}

struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
