import Foundation

/// One market day of a symbol: the day on its exchange's clock (`MarketDay`), and its
/// close, with open, high, low and volume where the source has them.
public struct DailyPrice: Codable, Sendable, Equatable {
    /// Where a row came from: Stooq's daily download, a file (`fetch --history --from`),
    /// or derived from the stored quotes of that day.
    public enum Source: String, Codable, Sendable, CaseIterable {
        case stooq, file, quotes
    }

    public var symbol: String
    /// `YYYY-MM-DD`.
    public var day: String
    public var open: Double?
    public var high: Double?
    public var low: Double?
    public var close: Double
    public var volume: Double?
    public var source: Source

    public init(symbol: String, day: String, open: Double? = nil, high: Double? = nil, low: Double? = nil, close: Double, volume: Double? = nil, source: Source) {
        self.symbol = symbol
        self.day = day
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.source = source
    }

    // Every key present, null when unknown: a stable shape for scripts.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(symbol, forKey: .symbol)
        try c.encode(day, forKey: .day)
        try c.encode(open, forKey: .open)
        try c.encode(high, forKey: .high)
        try c.encode(low, forKey: .low)
        try c.encode(close, forKey: .close)
        try c.encode(volume, forKey: .volume)
        try c.encode(source, forKey: .source)
    }
}

/// The previous trading day's close as a provider reported it beside a quote (Finnhub's
/// `pc`), for the market day of that quote.
public struct PreviousClose: Sendable, Equatable {
    public var symbol: String
    public var day: String
    public var close: Double
    public init(symbol: String, day: String, close: Double) {
        self.symbol = symbol
        self.day = day
        self.close = close
    }
}

/// Days on a market's clock (`Symbol.marketTimeZone`: New York for `.US`, London for
/// `.UK`/`.L`, Warsaw for `.PL`/`.WA`, Frankfurt, Tokyo and Hong Kong for `.DE`, `.JP`,
/// `.HK`, UTC for currency pairs), written `YYYY-MM-DD`, so
/// that they sort as text and every backend stores them alike.
public struct MarketDay: Sendable {
    let calendar: Calendar

    public init(zone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        self.calendar = calendar
    }

    public init(symbol: String) {
        self.init(zone: (try? Symbol.parse(symbol, shapeOnly: true))?.marketTimeZone ?? .gmt)
    }

    /// The day a moment falls on.
    public func day(of time: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day], from: time)
        return Self.text(year: c.year!, month: c.month!, day: c.day!)
    }

    /// The first moment of a day (its midnight, or the first moment after a DST gap).
    public func start(of day: String) -> Date? {
        guard let (y, m, d) = Self.parts(day) else { return nil }
        return calendar.date(from: DateComponents(year: y, month: m, day: d))
    }

    /// `YYYY-MM-DD`, checked to be a real date.
    public static func parts(_ day: String) -> (Int, Int, Int)? {
        // Exactly DDDD-DD-DD in ASCII digits: what the tables' CHECKs accept.
        let bytes = Array(day.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              bytes.enumerated().allSatisfy({ $0.offset == 4 || $0.offset == 7 || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0.element) })
        else { return nil }
        let fields = day.split(separator: "-")
        guard let y = Int(fields[0]), let m = Int(fields[1]), let d = Int(fields[2]), (1...12).contains(m), (1...31).contains(d) else { return nil }
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = .gmt
        guard let date = utc.date(from: DateComponents(year: y, month: m, day: d)),
              utc.component(.day, from: date) == d
        else { return nil }
        return (y, m, d)
    }

    /// The calendar day `days` after (or before, negative) a day: no clock involved.
    public static func adding(_ days: Int, to day: String) -> String? {
        guard let (y, m, d) = parts(day) else { return nil }
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = .gmt
        guard let date = utc.date(from: DateComponents(year: y, month: m, day: d + days)) else { return nil }
        let c = utc.dateComponents([.year, .month, .day], from: date)
        return text(year: c.year!, month: c.month!, day: c.day!)
    }

    /// A new high's or low's window is judged only with history back to its first week: a
    /// weekend and a holiday or two at its start are no gap.
    public static let coverageSlackDays = 6

    /// Whether history whose oldest day is `oldest` reaches back over a window of
    /// `windowSeconds` (whole days) before `day`.
    public static func reaches(oldest: String, windowSeconds: Int64, before day: String) -> Bool {
        guard let latest = adding(coverageSlackDays - Int(windowSeconds / 86_400), to: day) else { return false }
        return oldest <= latest
    }

    /// The retention of the daily table on `now`'s UTC day: the first day kept, `days` back,
    /// or the longest new-high/low window plus two weeks back if that is longer.
    public static func keepFrom(now: Date, days: Int, longestWindowSeconds: Int64) -> String {
        adding(-max(days, Int(longestWindowSeconds / 86_400) + 14), to: MarketDay(zone: .gmt).day(of: now))!
    }

    static func text(year: Int, month: Int, day: Int) -> String {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))"
    }
}
