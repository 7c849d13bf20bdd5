import Foundation

/// Times are stored and compared as whole milliseconds since 1970 (UTC).
extension Date {
    public init(milliseconds: Int64) { self.init(timeIntervalSince1970: TimeInterval(milliseconds) / 1000) }
    /// Saturating, the last line of defence for times from outside: Int64(_:) traps on NaN,
    /// infinity and anything past ±9.2e18, so NaN is 0 and the rest is clamped to ±(the end
    /// of the year 9999 UTC).
    public var milliseconds: Int64 {
        let value = timeIntervalSince1970 * 1000
        guard !value.isNaN else { return 0 }
        return Int64(min(max(value, -Self.millisecondLimit), Self.millisecondLimit).rounded())
    }

    /// 9999-12-31T23:59:59Z in milliseconds.
    public static let millisecondLimit: Double = 253_402_300_799_000
}
