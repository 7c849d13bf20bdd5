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
    /// compare both ways). `counting: false` leaves the report's `evaluated` at 0 when
    /// counting it costs a pass of its own (SQLite: every active alert of the batch's
    /// symbols, 60-115 ms at 1,000,000 alerts): a quiet run shows no count.
    func evaluate(now: Date, maxAgeSeconds: Int64, prefilter: Bool, counting: Bool) throws(StockwatchError) -> EvaluateReport
}

extension EvaluationStore {
    public func evaluate(now: Date, maxAgeSeconds: Int64, prefilter: Bool) throws(StockwatchError) -> EvaluateReport {
        try evaluate(now: now, maxAgeSeconds: maxAgeSeconds, prefilter: prefilter, counting: true)
    }
}
