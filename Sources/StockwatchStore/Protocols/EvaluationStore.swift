import Foundation
import StockwatchModel

/// Judging alerts against new quotes.
public protocol EvaluationStore: Sendable {
    /// Judges every active alert against the quotes of its symbol it has not judged yet
    /// (each alert's rule walked by `AlertMachine`), and writes the firings as
    /// notifications with one pending delivery per channel, the alerts' new states and the
    /// symbols' progress: all in one transaction, so that two runs never judge a quote
    /// twice. Quotes observed more than `maxAgeSeconds` before `now` are never judged. Alerts past their
    /// expiry end expired first. `prefilter: false` reads every active alert (tests
    /// compare both ways). `detailed: false` is a quiet run's report, which shows
    /// nothing: `evaluated` stays 0 and no notification is listed. Counting costs a pass
    /// of its own (SQLite: every active alert of the batch's symbols, 60-115 ms at
    /// 1,000,000 alerts); the list held 13 MiB and took 30 ms at 99,000 firings.
    func evaluate(now: Date, maxAgeSeconds: Int64, prefilter: Bool, detailed: Bool) throws(StockwatchError) -> EvaluateReport

    /// Writes into their alerts the ends of `once` alerts that evaluate kept aside, in one
    /// transaction; returns how many. Readers see the same either way: it only moves work
    /// out of evaluate, to where no notification waits on it (tick, after notify).
    /// SQLite's since migration v23; PostgreSQL writes the end in evaluate (0).
    @discardableResult func foldAlertEnds() throws(StockwatchError) -> Int
}

extension EvaluationStore {
    public func evaluate(now: Date, maxAgeSeconds: Int64, prefilter: Bool) throws(StockwatchError) -> EvaluateReport {
        try evaluate(now: now, maxAgeSeconds: maxAgeSeconds, prefilter: prefilter, detailed: true)
    }
}
