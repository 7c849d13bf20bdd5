import Foundation
import StockwatchStore

/// A provider's budget rules: when it may be asked, and how a failure backs it off.
extension ProviderStateRecord {
    /// Why this provider may not be asked now, if so.
    func refusal(config: ProviderConfig, now: Date) -> String? {
        if let until = blockedUntil, until > now {
            return "backing off until \(ISO8601DateFormatter().string(from: until)) (\(blockedReason ?? "earlier failure"))"
        }
        if config.minIntervalSeconds > 0, let last = lastSuccessAt {
            let next = last.addingTimeInterval(TimeInterval(config.minIntervalSeconds))
            if next > now { return "min_interval: next request after \(ISO8601DateFormatter().string(from: next))" }
        }
        return nil
    }

    mutating func recordSuccess(now: Date) {
        lastSuccessAt = now
        consecutiveFailures = 0
        blockedUntil = nil
        blockedReason = nil
    }

    mutating func recordFailure(_ failure: ProviderFailure, config: ProviderConfig, now: Date) {
        lastErrorAt = now
        lastError = failure.message
        consecutiveFailures += 1
        switch failure.kind {
        case .rateLimited:
            blockedUntil = now.addingTimeInterval(max(failure.retryAfter ?? 60, 1))
            blockedReason = "rate limited"
        case .quota:
            blockedUntil = Self.nextReset(after: now, day: config.quotaResetDay)
            blockedReason = "monthly quota reached"
        case .unavailable:
            // Exponential: 30 s, 1 min, 2 min, ... at most 1 h.
            let exponent = min(consecutiveFailures - 1, 7)
            blockedUntil = now.addingTimeInterval(min(30 * pow(2, Double(exponent)), 3_600))
            blockedReason = "unavailable"
        case .config, .badRequest:
            break  // an admin must fix it; every run says so
        }
    }

    /// The next `day` of a month, 00:00 UTC, strictly after `now`.
    static func nextReset(after now: Date, day: Int) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var components = calendar.dateComponents([.year, .month], from: now)
        components.day = day
        let thisMonth = calendar.date(from: components)!
        return thisMonth > now ? thisMonth : calendar.date(byAdding: .month, value: 1, to: thisMonth)!
    }
}
