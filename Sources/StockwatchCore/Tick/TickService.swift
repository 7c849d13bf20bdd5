import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch tick`: fetch, evaluate and notify in one process, the way cron runs them
/// every minute, under an exclusive lock so that a slow tick is never overlapped by the
/// next. Each step runs even when the one before failed (older pending deliveries are
/// still sent when a provider is down); the first failing step sets the exit status.
public struct TickService: Sendable {
    let database: any DataStore
    let config: Config
    let environment: [String: String]
    let writeLine: @Sendable (String) -> Void
    /// Whether the evaluate report counts the alerts it judged and lists the
    /// notifications (see `EvaluateService.run`).
    let detailedEvaluate: Bool

    public init(
        database: any DataStore, config: Config, environment: [String: String],
        writeLine: @escaping @Sendable (String) -> Void = NotifyService.standardOutput, detailedEvaluate: Bool = true
    ) {
        self.detailedEvaluate = detailedEvaluate
        self.database = database
        self.config = config
        self.environment = environment
        self.writeLine = writeLine
    }

    /// `input`: quotes to store instead of asking the providers (`tick --from`).
    public func run(input: (data: Data, source: String)? = nil) async throws(StockwatchError) -> TickReport {
        let lock = try database.runLock(name: "tick-lock", holder: "tick")
        defer { lock.release() }
        var report = TickReport()
        do {
            let fetch = FetchService(database: database, config: config, environment: environment)
            if let input {
                report.fetch = try fetch.ingest(input.data, source: input.source)
            } else {
                report.fetch = try await fetch.run()
            }
        } catch {
            report.errors.append(error)
        }
        // Daily history for new since-close and new-high/low alerts, a few symbols a run,
        // when Stooq is one of the configured providers.
        if input == nil, config.providers[ProviderName.stooq.rawValue] != nil {
            do {
                let history = DailyHistoryService(database: database, config: config)
                if try !history.symbolsWithoutHistory().isEmpty {
                    report.history = try await history.backfill(symbols: [], maxRequests: Self.historyRequestsPerRun)
                }
            } catch {
                // Best effort: in the history report, never the tick's exit status.
                var failed = DailyHistoryReport()
                failed.errors = [.init(provider: nil, symbol: nil, code: error.code, message: error.message)]
                report.history = failed
            }
        }
        do {
            report.evaluate = try EvaluateService(database: database, config: config).run(detailed: detailedEvaluate)
        } catch {
            report.errors.append(error)
        }
        do {
            report.notify = try await NotifyService(database: database, config: config, environment: environment, writeLine: writeLine).run()
        } catch {
            report.errors.append(error)
        }
        // Last, when the notifications are out: the `once` alerts' ends evaluate kept aside.
        do {
            try database.foldAlertEnds()
        } catch {
            report.errors.append(error)
        }
        return report
    }

    /// At most this many Stooq daily downloads per tick: a minute's tick stays short, and a
    /// hundred new symbols are backfilled within the hour.
    public static let historyRequestsPerRun = 3
}

public struct TickReport: Encodable, Sendable {
    public var fetch: FetchReport?
    /// Daily history the tick downloaded; nil when nothing needed it.
    public var history: DailyHistoryReport?
    public var evaluate: EvaluateReport?
    public var notify: NotifyReport?
    /// Steps that failed as a whole (the database busy, a config error).
    public var errors: [StockwatchError] = []

    enum CodingKeys: String, CodingKey { case fetch, history, evaluate, notify, errors }

    /// Every key always present: a step that did not run is null, and `errors` lists the
    /// steps that failed as a whole, so the JSON never looks clean when one did.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(fetch, forKey: .fetch)
        try c.encode(history, forKey: .history)
        try c.encode(evaluate, forKey: .evaluate)
        try c.encode(notify, forKey: .notify)
        try c.encode(errors.map(\.json), forKey: .errors)
    }
}
