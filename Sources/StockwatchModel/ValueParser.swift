import Foundation

/// Parses the values users type: prices, percentages, durations and dates.
/// Each failure names the option and the value, so the one-line error points at the culprit.
public enum ValueParser {
    /// Largest price accepted; far beyond any real quote, small enough to stay exact.
    public static let maximumPrice = 1e15

    /// A plain decimal such as `200`, `1.0850` or `.5`: no sign, exponent, hex, `nan` or `inf`.
    public static func price(_ text: String, option: String) throws(StockwatchError) -> Double {
        let value = try decimal(text, option: option)
        guard value > 0 else { throw .invalidValue(option: option, value: text, reason: "a price must be greater than 0") }
        guard value < maximumPrice else { throw .invalidValue(option: option, value: text, reason: "price is too large") }
        return value
    }

    /// `5` or `5%`, greater than 0 and at most 1000.
    public static func percent(_ text: String, option: String) throws(StockwatchError) -> Double {
        let number = text.hasSuffix("%") ? String(text.dropLast()) : text
        let value = try decimal(number, option: option, original: text)
        guard value > 0 else { throw .invalidValue(option: option, value: text, reason: "a percentage must be greater than 0") }
        guard value <= 1000 else { throw .invalidValue(option: option, value: text, reason: "a percentage must be at most 1000") }
        return value
    }

    private static func decimal(_ text: String, option: String, original: String? = nil) throws(StockwatchError) -> Double {
        let shown = original ?? text
        var digits = 0, dots = 0
        for character in text.unicodeScalars {
            switch character {
            case "0"..."9": digits += 1
            case ".": dots += 1
            default:
                if character == "-" { throw .invalidValue(option: option, value: shown, reason: "must not be negative") }
                throw .invalidValue(option: option, value: shown, reason: "not a decimal number")
            }
        }
        guard digits > 0, dots <= 1, digits <= 30, let value = Double(text), value.isFinite else {
            throw .invalidValue(option: option, value: shown, reason: "not a decimal number")
        }
        return value
    }

    static let unitSeconds: [Character: Int64] = ["w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1]
    /// The same units, largest first, for `format(seconds:)`.
    static let formatUnits: [(String, Int64)] = [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]

    /// Ten years: anything longer is a typo, and keeps arithmetic far from overflow.
    public static let maximumDurationSeconds: Int64 = 10 * 366 * 86_400

    /// `90s`, `15m`, `4h`, `2d`, `1w`, or combinations such as `1h30m`. Returns seconds.
    public static func duration(_ text: String, option: String, allowZero: Bool = false) throws(StockwatchError) -> Int64 {
        var total: Int64 = 0
        var number: Int64?
        guard !text.isEmpty else { throw .invalidValue(option: option, value: text, reason: "empty duration (write e.g. 90s, 15m, 4h, 2d, 1w or 1h30m)") }
        for character in text {
            if let digit = character.wholeNumberValue, character.isASCII {
                let next = (number ?? 0) * 10 + Int64(digit)
                guard next <= maximumDurationSeconds else { throw .invalidValue(option: option, value: text, reason: "duration is longer than 10 years") }
                number = next
            } else if let unit = unitSeconds[character], let count = number {
                total += count * unit
                guard total <= maximumDurationSeconds else { throw .invalidValue(option: option, value: text, reason: "duration is longer than 10 years") }
                number = nil
            } else {
                throw .invalidValue(option: option, value: text, reason: "not a duration (write e.g. 90s, 15m, 4h, 2d, 1w or 1h30m)")
            }
        }
        if number != nil { throw .invalidValue(option: option, value: text, reason: "a number needs a unit (s, m, h, d or w)") }
        if total == 0, !allowZero { throw .invalidValue(option: option, value: text, reason: "duration must be longer than 0") }
        return total
    }

    /// The API's only time forms, exactly as openapi.yaml's pattern says: `2026-12-31`
    /// (midnight UTC), `2026-12-31T18:00:00Z`, or with 1 to 9 fractional digits before the
    /// `Z`; a day the calendar does not have is refused. No offsets, no lower-case `t`/`z`.
    public static func apiTime(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
                value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10)
        else { return nil }
        var components = DateComponents(year: year, month: month, day: day, hour: 0, minute: 0, second: 0)
        var fraction = 0.0
        if bytes.count > 10 {
            guard bytes.count >= 20, bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
                bytes.last == UInt8(ascii: "Z"),
                let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
            else { return nil }
            components.hour = hour
            components.minute = minute
            components.second = second
            if bytes.count > 20 {
                let digits = bytes.count - 21
                guard bytes[19] == UInt8(ascii: "."), (1...9).contains(digits), let value = number(20..<(20 + digits)) else { return nil }
                fraction = Double(value) / pow(10, Double(digits))
            }
        }
        guard year >= 1000, (1...12).contains(month), (1...31).contains(day), components.hour! < 24, components.minute! < 60, components.second! < 60,
            components.isValidDate(in: utcCalendar), let date = utcCalendar.date(from: components)
        else { return nil }
        return date.addingTimeInterval(fraction)
    }

    private static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// An ISO 8601 date (`2026-12-31`, midnight UTC) or date-time (`2026-12-31T18:00:00Z`, offsets allowed).
    public static func date(_ text: String) -> Date? {
        // The format styles are pure Swift and about 250× faster than ISO8601DateFormatter,
        // which on Linux builds an ICU formatter per call: half of an idle tick's time went
        // to parsing 200 quote times. Like the formatter, they roll 25:00 over to the next
        // day, so the clock fields are checked here.
        let bytes = text.utf8
        if bytes.count >= 19, bytes[bytes.index(bytes.startIndex, offsetBy: 10)] == UInt8(ascii: "T") {
            let digits = Array(bytes.prefix(19))
            func field(_ at: Int) -> Int { Int(digits[at] &- 48) * 10 + Int(digits[at + 1] &- 48) }
            guard field(11) < 24, field(14) < 60, field(17) < 60 else { return nil }
            return (try? Self.dateTime.parse(text)) ?? (try? Self.fractionalDateTime.parse(text))
        }
        return bytes.count == 10 ? try? Self.day.parse(text) : nil
    }

    private static let dateTime = Date.ISO8601FormatStyle()
    private static let fractionalDateTime = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let day = Date.ISO8601FormatStyle().year().month().day()

    /// `--expires`: a date, or a duration from now. Must lie in the future.
    public static func expiry(_ text: String, option: String, now: Date) throws(StockwatchError) -> Date {
        let result: Date
        if let date = date(text) {
            result = date
        } else if text.first?.isNumber == true, text.last?.isLetter == true, !text.contains("-") {
            result = now.addingTimeInterval(TimeInterval(try duration(text, option: option)))
        } else {
            throw .invalidValue(option: option, value: text, reason: "not a date (2026-12-31, 2026-12-31T18:00:00Z) or duration (30d)")
        }
        guard result > now else { throw .invalidValue(option: option, value: text, reason: "lies in the past") }
        return result
    }

    /// `--since`: a date, or a duration before now.
    public static func since(_ text: String, option: String, now: Date) throws(StockwatchError) -> Date {
        if let date = date(text) { return date }
        guard text.first?.isNumber == true, !text.contains("-") else {
            throw .invalidValue(option: option, value: text, reason: "not a date (2026-12-31, 2026-12-31T18:00:00Z) or duration (24h)")
        }
        return now.addingTimeInterval(-TimeInterval(try duration(text, option: option)))
    }

    /// `--new-high` and `--new-low`: a window of whole calendar days (`20d`, `52w`).
    public static func dayWindow(_ text: String, option: String) throws(StockwatchError) -> Int64 {
        let seconds = try duration(text, option: option)
        guard seconds % 86_400 == 0 else {
            throw .invalidValue(option: option, value: text, reason: "a window of whole days, such as 20d or 52w")
        }
        return seconds
    }

    /// A window of whole days as written: whole weeks as `52w`, else days (`20d`, not
    /// `2w6d`); other lengths as `format(seconds:)`.
    public static func formatDays(seconds: Int64) -> String {
        if seconds > 0, seconds % 604_800 == 0 { return "\(seconds / 604_800)w" }
        if seconds > 0, seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        return format(seconds: seconds)
    }

    /// Formats seconds back as the shortest duration string, e.g. 5400 -> "1h30m".
    public static func format(seconds: Int64) -> String {
        if seconds == 0 { return "0s" }
        var rest = seconds
        var text = ""
        // In a firing's message: no dictionary lookup or interpolation per unit.
        for (unit, size) in formatUnits where rest >= size {
            text += String(rest / size)
            text += unit
            rest %= size
        }
        return text
    }
}

public enum Validation {
    /// Names of users and channels: letters, digits, `-`, `_`, `.`, `@`; 1 to 64 characters.
    public static func isName(_ text: String) -> Bool {
        guard (1...64).contains(text.unicodeScalars.count) else { return false }
        return text.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "-_.@".unicodeScalars.contains(scalar))
        }
    }
}
