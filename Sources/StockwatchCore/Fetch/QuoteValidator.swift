import Foundation
import StockwatchModel

/// The last gate before the database: no zero, negative, non-finite, future or stale price.
struct QuoteValidator {
    let now: Date
    let maxAgeSeconds: Int64
    static let futureTolerance: TimeInterval = 300

    /// Why the quote is refused, or nil when it may be stored.
    func refusal(_ quote: FetchedQuote) -> String? {
        guard quote.price.isFinite, quote.price > 0 else { return "price \(quote.price) is not a positive number" }
        guard quote.price < ValueParser.maximumPrice else { return "price \(quote.price) is implausibly large" }
        // Checked before any formatting or comparison: NaN passes every comparison, and a
        // date past the year 9999 has no ISO 8601 form.
        let seconds = quote.observedAt.timeIntervalSince1970
        guard seconds.isFinite, abs(seconds) * 1000 <= Date.millisecondLimit else {
            return "time \(seconds) is not a plausible Unix time"
        }
        if quote.observedAt.timeIntervalSince(now) > Self.futureTolerance {
            return "time \(ISO8601DateFormatter().string(from: quote.observedAt)) lies more than 5 minutes in the future"
        }
        if now.timeIntervalSince(quote.observedAt) > TimeInterval(maxAgeSeconds) {
            return "time \(ISO8601DateFormatter().string(from: quote.observedAt)) is older than max_age (\(ValueParser.format(seconds: maxAgeSeconds)))"
        }
        return nil
    }
}
