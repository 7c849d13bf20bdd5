import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch status`: what a monitoring check needs, and whether anything needs a person.
public struct StatusService: Sendable {
    let database: any DataStore
    let config: Config

    public init(database: any DataStore, config: Config) {
        self.database = database
        self.config = config
    }

    /// Deliveries due longer ago than this mean notify is not running.
    static let overdueAfter: TimeInterval = 600
    /// Dead deliveries are a problem for this long, then only history.
    static let deadWindow: TimeInterval = 86_400

    public func run(now: Date = Date()) throws(StockwatchError) -> StatusReport {
        let path = database.location
        var report = StatusReport(database: .init(path: path, bytes: try database.storageBytes()))
        let watched = try FetchService(database: database, config: config, environment: [:]).watchedSymbols().map(\.text)
        let states = Dictionary(uniqueKeysWithValues: try database.providerStates().map { ($0.provider, $0) })
        report.providers = config.providers.keys.sorted().map { name in
            let state = states[name]
            let blocked = (state?.blockedUntil).flatMap { $0 > now ? $0 : nil }
            return StatusReport.Provider(
                name: name, lastSuccessAt: state?.lastSuccessAt, lastErrorAt: state?.lastErrorAt, lastError: state?.lastError,
                consecutiveFailures: state?.consecutiveFailures ?? 0, blockedUntil: blocked, blockedReason: blocked == nil ? nil : state?.blockedReason)
        }
        let newestBySymbol = try database.newestObservedAt(symbols: watched)
        report.staleSymbols = watched.sorted().compactMap { symbol in
            let newest = newestBySymbol[symbol]
            guard newest.map({ now.milliseconds - $0.milliseconds > config.maxAgeSeconds * 1000 }) ?? true else { return nil }
            return StatusReport.StaleSymbol(symbol: symbol, newestObservedAt: newest)
        }
        report.deliveries = try database.deliveryHealth(
            overdueBefore: now.addingTimeInterval(-Self.overdueAfter), deadSince: now.addingTimeInterval(-Self.deadWindow))
        report.recentErrors = try database.recentFailedAttempts(limit: 10)
        let tokens = try database.accessTokenExpiries()
        report.fcm = config.channels.values.filter { $0.type == .fcm }.sorted { $0.name < $1.name }.map { channel in
            let account = channel.serviceAccountFile.flatMap { try? ServiceAccount.load(path: $0) }
            return StatusReport.FCMToken(
                channel: channel.name, account: account?.clientEmail, tokenExpiresAt: account.flatMap { tokens[$0.cacheKey] },
                problem: account == nil ? "cannot read service_account_file \(channel.serviceAccountFile ?? "")" : nil)
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
}
