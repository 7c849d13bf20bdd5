import Foundation
import StockwatchModel

/// Reference prices: a rise or fall rule's price a window ago, a since-close rule's
/// previous close, a new high's or low's extreme close of its window. Looked up once per
/// key and cached for the run.
extension Evaluation {
    /// What a rule's reference price is, for the quote it judges.
    enum Basis: Hashable {
        /// rise, fall: the last price at or before the quote's time minus the window.
        case window(Int64)
        /// since close: the previous trading day's close (a provider's, else the daily table's).
        case previousClose
        /// new high, new low: the highest or lowest daily close of the window's days before
        /// the quote's market day.
        case highest(Int64)
        case lowest(Int64)

        init?(_ condition: Condition) {
            switch condition {
            case let .rise(_, w), let .fall(_, w): self = .window(w)
            case .riseSinceClose, .fallSinceClose: self = .previousClose
            case let .newHigh(w): self = .highest(w)
            case let .newLow(w): self = .lowest(w)
            default: return nil
            }
        }

        /// From an alert's stored kind and window, as the summaries read them.
        init?(kind: String, window: Int64?) {
            switch (kind, window) {
            case let ("rise", w?), let ("fall", w?): self = .window(w)
            case ("rise_since_close", _), ("fall_since_close", _): self = .previousClose
            case let ("new_high", w?): self = .highest(w)
            case let ("new_low", w?): self = .lowest(w)
            default: return nil
            }
        }

        var isHighest: Bool {
            if case .highest = self { return true }
            return false
        }

        /// `r.basis` and `r.window_seconds` in the seeks.
        var name: String {
            switch self {
            case .window: "window"
            case .previousClose: "close"
            case .highest: "high"
            case .lowest: "low"
            }
        }

        var windowSeconds: Int64 {
            switch self {
            case let .window(w), let .highest(w), let .lowest(w): w
            case .previousClose: 0
            }
        }
    }

    /// A symbol and a basis some alert of it has: one row of the seeks' reference ranges.
    struct ReferencePair: Hashable {
        let symbol: String
        let basis: Basis
    }

    struct ReferenceKey: Hashable {
        let symbol: String
        let basis: Basis
        let index: Int
    }

    /// A daily reference: the same for every quote of one market day.
    struct DailyKey: Hashable {
        let symbol: String
        let basis: Basis
        let day: String

        /// The window's first day (new high and low): `day` minus the window's days.
        var from: String { MarketDay.adding(-Int(basis.windowSeconds / 86_400), to: day) ?? day }
    }

    /// The extreme close of a window, if the history reaches back over it.
    static func extreme(_ value: Double?, oldest: String?, key: DailyKey) -> Double? {
        guard let value, let oldest, MarketDay.reaches(oldest: oldest, windowSeconds: key.basis.windowSeconds, before: key.day) else { return nil }
        return value
    }

    /// The range of reference prices of a symbol's fresh quotes (or of `indexes`) for one basis.
    mutating func referenceRange(_ symbol: String, basis: Basis, indexes: [Int]? = nil) throws -> Range {
        var range = Range()
        for i in indexes ?? freshIndexes(symbol) {
            if let price = try reference(symbol, basis: basis, index: i) { range.add(price) } else { range.missing = true }
        }
        return range
    }

    /// The reference keys (symbol, basis, quote) that judging the candidates may need:
    /// for a backend that fetches them in one batch first.
    mutating func referenceKeysNeeded() -> Set<ReferenceKey> {
        var keys = Set<ReferenceKey>()
        for candidate in candidates {
            guard let basis = Basis(candidate.machine.condition), let range = judgedRange(candidate) else { continue }
            let quotes = symbols[candidate.symbol]!
            for i in range where quotes.times[i] >= staleBefore {
                keys.insert(ReferenceKey(symbol: candidate.symbol, basis: basis, index: i))
            }
        }
        return keys
    }

    /// The time whose last price is the reference of a window key.
    func referenceTime(_ key: ReferenceKey) -> Int64 {
        symbols[key.symbol]!.times[key.index] - key.basis.windowSeconds * 1000
    }

    /// The market day of a symbol's quote (cached: a run's quotes mostly share one day).
    mutating func marketDay(_ symbol: String, index: Int) -> String {
        let time = symbols[symbol]!.times[index]
        let zone = marketZones[symbol] ?? {
            let zone = (try? Symbol.parse(symbol, shapeOnly: true))?.marketTimeZone ?? .gmt
            marketZones[symbol] = zone
            return zone
        }()
        if let known = marketDays[zone.identifier], known.start <= time, time < known.end { return known.day }
        let market = marketDays[zone.identifier]?.market ?? MarketDay(zone: zone)
        let day = market.day(of: Date(milliseconds: time))
        let start = market.start(of: day)?.milliseconds ?? time
        let end = MarketDay.adding(1, to: day).flatMap(market.start(of:))?.milliseconds ?? time + 1
        marketDays[zone.identifier] = (market, start, end, day)
        return day
    }

    /// The daily key of a daily reference (nil for a window).
    mutating func dailyKey(_ key: ReferenceKey) -> DailyKey? {
        if case .window = key.basis { return nil }
        return DailyKey(symbol: key.symbol, basis: key.basis, day: marketDay(key.symbol, index: key.index))
    }

    /// A quote's reference, cached per symbol, basis and quote (and per market day for
    /// the daily ones).
    mutating func reference(_ symbol: String, basis: Basis, index: Int) throws -> Double? {
        let key = ReferenceKey(symbol: symbol, basis: basis, index: index)
        if let known = references[key] { return known }
        let price: Double?
        if let daily = dailyKey(key) {
            if let known = dailyReferences[daily] {
                price = known
            } else {
                price = try lookupDaily(daily)
                dailyReferences[daily] = .some(price)
            }
        } else {
            price = try lookupReference(symbol, referenceTime(key))
        }
        references[key] = .some(price)
        return price
    }
}
