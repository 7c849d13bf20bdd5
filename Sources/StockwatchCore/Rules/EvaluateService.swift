import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch evaluate`: judges every active alert against the quotes of its symbol that
/// it has not judged yet, and writes each firing as a notification with one pending
/// delivery per channel.
///
/// The judging itself is the store's (`EvaluationStore.evaluate`): on SQLite it is one
/// IMMEDIATE transaction, planned around SQLite's index seeks (SQLite/Evaluation).
public struct EvaluateService: Sendable {
    let database: any EvaluationStore
    let config: Config

    public init(database: any EvaluationStore, config: Config) {
        self.database = database
        self.config = config
    }

    /// `prefilter: false` judges every active alert in Swift: tests compare both ways.
    /// `detailed: false`: a quiet run's report, with no count of the alerts judged and no
    /// notification listed (`EvaluationStore.evaluate`).
    public func run(now: Date = Date(), prefilter: Bool = true, detailed: Bool = true) throws(StockwatchError) -> EvaluateReport {
        try database.evaluate(now: now, maxAgeSeconds: config.maxAgeSeconds, prefilter: prefilter, detailed: detailed)
    }
}

