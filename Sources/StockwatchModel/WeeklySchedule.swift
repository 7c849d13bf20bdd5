import Foundation

/// When an alert may notify, on its user's wall clock: `mon-fri 09:30-16:00`. Days are
/// a range (`mon-fri`, `fri-mon` wraps over the weekend), a list (`mon,wed,fri`) or one
/// day; the hours run from the start (inclusive) to the end (exclusive) within a day.
public struct WeeklySchedule: Sendable, Equatable, CustomStringConvertible {
    /// 1 = Sunday ... 7 = Saturday, as `Calendar` numbers them.
    public var days: Set<Int>
    /// Minutes after midnight; start < end.
    public var start: Int
    public var end: Int
    /// The text as given, normalised (lower-case, single spaces).
    public let description: String

    static let dayNames = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    public static func parse(_ text: String, option: String) throws(StockwatchError) -> WeeklySchedule {
        let hint = "write DAYS HH:MM-HH:MM, e.g. mon-fri 09:30-16:00 or sat,sun 10:00-14:00"
        let parts = text.lowercased().split(separator: " ", omittingEmptySubsequences: true)
        guard text.count <= 64, parts.count == 2 else { throw .invalidValue(option: option, value: text, reason: hint) }
        var days = Set<Int>()
        for item in parts[0].split(separator: ",", omittingEmptySubsequences: false) {
            let range = item.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(range.count), let first = dayNames[String(range[0])], let last = dayNames[String(range.last!)] else {
                throw .invalidValue(option: option, value: text, reason: "days are mon, tue, wed, thu, fri, sat and sun; \(hint)")
            }
            var day = first
            days.insert(day)
            while day != last {
                day = day % 7 + 1
                days.insert(day)
            }
        }
        let hours: QuietHours
        do { hours = try QuietHours.parse(String(parts[1]), option: option) } catch { throw .invalidValue(option: option, value: text, reason: hint) }
        guard hours.start < hours.end else {
            throw .invalidValue(option: option, value: text, reason: "the hours end before they start; a schedule lies within each day (\(hint))")
        }
        return WeeklySchedule(days: days, start: hours.start, end: hours.end, description: parts.joined(separator: " "))
    }

    /// Whether `date` falls in the schedule on the wall clock of `zone`.
    public func contains(_ date: Date, in zone: TimeZone) -> Bool {
        let calendar = Calendar.wallClock(of: zone)
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        return days.contains(parts.weekday ?? 0) && (start..<end).contains(minute)
    }
}
