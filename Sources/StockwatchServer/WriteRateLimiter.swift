import Foundation
import StockwatchCore

/// A token bucket per user for the API's writes: `perMinute` writes in a burst, then one
/// every 60/`perMinute` seconds. Every write counts, refused ones too. Kept in memory, so
/// the limit is per serve instance.
actor WriteRateLimiter {
    private let capacity: Double
    private let perSecond: Double
    private var buckets: [Int64: (tokens: Double, at: ContinuousClock.Instant)] = [:]

    init(perMinute: Int) {
        capacity = Double(perMinute)
        perSecond = Double(perMinute) / 60
    }

    /// Takes one write from the user's bucket, or throws `APIError.tooManyWrites` with
    /// the seconds until one is available.
    func admit(_ userID: Int64, now: ContinuousClock.Instant = .now) throws {
        var bucket = buckets[userID] ?? (capacity, now)
        let elapsed = now - bucket.at
        // Calls may reach the actor out of the order they read the clock in.
        let seconds = max(0, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        bucket.tokens = min(capacity, bucket.tokens + seconds * perSecond)
        bucket.at = now
        guard bucket.tokens >= 1 else {
            buckets[userID] = bucket
            throw APIError.tooManyWrites(retryAfterSeconds: Int(((1 - bucket.tokens) / perSecond).rounded(.up)))
        }
        bucket.tokens -= 1
        buckets[userID] = bucket
    }
}
