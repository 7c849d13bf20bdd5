import Foundation

/// A user's nightly quiet period in their own wall-clock time, `22:00-07:00`: a start
/// after its end runs over midnight. Read against the clock of the user's time zone at
/// the moment it matters, so a daylight-saving change needs no rule of its own: on the
/// night the clocks go forward a period over the missing hour is simply shorter, and on
/// the night they go back the repeated hour is quiet both times.
public struct QuietHours: Sendable, Equatable, CustomStringConvertible {
    /// Minutes after midnight, 0 to 1439.
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }

    /// `HH:MM-HH:MM`, 24-hour, two digits each; the two ends differ.
    public static func parse(_ text: String, option: String) throws(StockwatchError) -> QuietHours {
        let hint = "write HH:MM-HH:MM in 24-hour time, e.g. 22:00-07:00"
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = minutes(parts[0]), let end = minutes(parts[1]) else {
            throw .invalidValue(option: option, value: text, reason: hint)
        }
        guard start != end else { throw .invalidValue(option: option, value: text, reason: "the start and the end are the same time; \(hint)") }
        return QuietHours(start: start, end: end)
    }

    private static func minutes(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count == 5, bytes[2] == UInt8(ascii: ":"), bytes.enumerated().allSatisfy({ $0.offset == 2 || (48...57).contains($0.element) }) else { return nil }
        let hour = Int(bytes[0] - 48) * 10 + Int(bytes[1] - 48), minute = Int(bytes[3] - 48) * 10 + Int(bytes[4] - 48)
        guard hour < 24, minute < 60 else { return nil }
        return hour * 60 + minute
    }

    public var description: String {
        String(format: "%02d:%02d-%02d:%02d", start / 60, start % 60, end / 60, end % 60)
    }

    /// When the period that `date` falls in ends: the next time the wall clock of `zone`
    /// shows `end` (or, on a night that skips it, the first time after).
    public func end(after date: Date, in zone: TimeZone) -> Date {
        let calendar = Calendar.wallClock(of: zone)
        return calendar.nextDate(after: date, matching: DateComponents(hour: end / 60, minute: end % 60, second: 0), matchingPolicy: .nextTime)
            ?? date.addingTimeInterval(86_400)
    }

    /// Whether `date` falls in the period, read on the wall clock of `zone`: from the start
    /// (inclusive) to the end (exclusive).
    public func contains(_ date: Date, in zone: TimeZone) -> Bool {
        let calendar = Calendar.wallClock(of: zone)
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        let now = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        return start < end ? (start..<end).contains(now) : now >= start || now < end
    }
}

/// IANA time zone names, as users give them.
public enum UserTimeZone {
    public static let defaultName = "UTC"

    /// The zone named exactly (`Europe/Warsaw`); anything else is refused with a hint at
    /// the names it may have meant.
    public static func parse(_ name: String, option: String) throws(StockwatchError) -> TimeZone {
        if name.count <= 64, name.contains("/") || name == "UTC", let zone = TimeZone(identifier: name), zone.identifier == name || name == "UTC" {
            return zone
        }
        let wanted = name.lowercased().replacingOccurrences(of: " ", with: "_")
        let city = wanted.split(separator: "/").last.map(String.init) ?? wanted
        let near = TimeZone.knownTimeZoneIdentifiers.filter { known in
            let lower = known.lowercased()
            return lower == wanted || lower.hasSuffix("/" + city)
        }.prefix(3)
        let hint = near.isEmpty ? "an IANA time zone name such as Europe/Warsaw, America/New_York or UTC" : "did you mean \(near.joined(separator: ", "))?"
        throw .invalidValue(option: option, value: name, reason: "not a time zone; \(hint)")
    }
}

extension Calendar {
    /// The Gregorian calendar on the wall clock of `zone`.
    static func wallClock(of zone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }
}
