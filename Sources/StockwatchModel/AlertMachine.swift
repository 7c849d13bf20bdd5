import Foundation

/// One alert's rule and trigger state while evaluate walks its symbol's quotes: the pure
/// part of evaluation, with no database, so that every boundary can be tested in a table.
/// The exact semantics are in the man page (EVALUATION).
public struct AlertMachine: Sendable, Equatable {
    public var condition: Condition
    public var trigger: AlertTrigger
    public var cooldownMilliseconds: Int64
    public var rearmMarginPercent: Double
    /// `armed`, `firing` or (after a `once` firing) `fired`.
    public var state: AlertState
    /// Observed time of the quote that last produced a notification.
    public var lastFiredAt: Int64?
    /// Quotes observed before this time (ms) notify nothing: a firing then is judged and
    /// forgotten, as inside a cooldown. A `once` alert is not used up by it.
    public var snoozedUntil: Int64?
    /// Outside this schedule, on `zone`'s clock, a firing notifies nothing (as in a snooze).
    public var schedule: WeeklySchedule?
    public var zone: TimeZone?
    /// A trailing rule's running peak (trailing fall) or trough (trailing rise) since the
    /// alert was armed or re-armed; nil until it has judged a price.
    public var trailingFrom: Double?

    public init(
        condition: Condition, trigger: AlertTrigger = .rearm, cooldownSeconds: Int64 = 0, rearmMarginPercent: Double = 0,
        state: AlertState = .armed, lastFiredAt: Int64? = nil, snoozedUntil: Int64? = nil, schedule: WeeklySchedule? = nil, zone: TimeZone? = nil,
        trailingFrom: Double? = nil
    ) {
        self.trailingFrom = trailingFrom
        self.schedule = schedule
        self.zone = zone
        self.snoozedUntil = snoozedUntil
        self.condition = condition
        self.trigger = trigger
        self.cooldownMilliseconds = cooldownSeconds * 1000
        self.rearmMarginPercent = rearmMarginPercent
        self.state = state
        self.lastFiredAt = lastFiredAt
    }

    /// A computed level (reference x 1.05) is off by an ulp or so; without this a rise from
    /// 100 to exactly 105 would not count as 5%.
    static let tolerance = 1e-12

    /// What one quote did to the alert.
    public enum Outcome: Equatable, Sendable {
        /// Nothing to send (the state may still have changed).
        case quiet
        /// The rule fired and the cooldown allows it: write a notification with this message.
        case notify(String)
        /// The rule fired inside the cooldown: no notification, but the state moved.
        case suppressed
        /// A rise or fall rule has no quote as old as its window.
        case insufficientHistory
    }

    /// Judges one quote. `previous` is the price of the quote before it that this alert saw
    /// (nil for the first); `reference` the last price at or before `time - window` (rise
    /// and fall), the previous close (since close), or the highest or lowest daily close of
    /// the window before the quote's day (new high, new low).
    public mutating func judge(symbol: String, price: Double, time: Int64, previous: Double?, reference: Double?) -> Outcome {
        guard state == .armed || state == .firing else { return .quiet }
        let level: Double
        let upward: Bool
        let holds: Bool
        switch condition {
        case let .above(x):
            (level, upward, holds) = (x, true, price >= x)
        case let .below(x):
            (level, upward, holds) = (x, false, price <= x)
        case let .crossesAbove(x):
            (level, upward) = (x, true)
            holds = previous.map { $0 < x && price >= x } ?? false
        case let .crossesBelow(x):
            (level, upward) = (x, false)
            holds = previous.map { $0 > x && price <= x } ?? false
        case let .rise(percent, _), let .riseSinceClose(percent):
            guard let reference else { return .insufficientHistory }
            (level, upward) = (reference * (1 + percent / 100), true)
            holds = price >= level * (1 - Self.tolerance)
        case let .fall(percent, _), let .fallSinceClose(percent):
            guard let reference else { return .insufficientHistory }
            (level, upward) = (reference * (1 - percent / 100), false)
            holds = price <= level * (1 + Self.tolerance)
        case .newHigh:
            // Strictly above: a price equal to the old high is no new high.
            guard let reference else { return .insufficientHistory }
            (level, upward, holds) = (reference, true, price > reference)
        case .newLow:
            guard let reference else { return .insufficientHistory }
            (level, upward, holds) = (reference, false, price < reference)
        case let .trailingFall(percent):
            // The price itself may be the new peak; it is judged against the peak it made.
            let peak = max(trailingFrom ?? price, price)
            trailingFrom = peak
            (level, upward) = (peak * (1 - percent / 100), false)
            holds = price <= level * (1 + Self.tolerance)
        case let .trailingRise(percent):
            let trough = min(trailingFrom ?? price, price)
            trailingFrom = trough
            (level, upward) = (trough * (1 + percent / 100), true)
            holds = price >= level * (1 - Self.tolerance)
        }

        switch trigger {
        case .once:
            guard holds else { return .quiet }
            state = .fired
        case .every:
            guard holds else { return .quiet }
        case .rearm:
            if state == .firing {
                // Hysteresis: back on the other side of the level by the margin.
                let margin = rearmMarginPercent / 100
                let back = upward ? price < level * (1 - margin) : price > level * (1 + margin)
                if back {
                    state = .armed
                    // Re-armed: a trailing rule follows the price from here.
                    if condition.kind.isTrailing { trailingFrom = price }
                }
                return .quiet
            }
            guard holds else { return .quiet }
            state = .firing
        }
        // Snoozed, or outside its schedule: forgotten, not queued; a once alert stays
        // armed for later.
        let snoozed = snoozedUntil.map { time < $0 } ?? false
        if snoozed || !(schedule?.contains(Date(milliseconds: time), in: zone ?? .gmt) ?? true) {
            if trigger == .once { state = .armed }
            return .suppressed
        }
        if let last = lastFiredAt, cooldownMilliseconds > 0, time - last < cooldownMilliseconds {
            return .suppressed
        }
        lastFiredAt = time
        return .notify(Self.message(condition, symbol: symbol, price: price, reference: condition.kind.isTrailing ? trailingFrom : reference))
    }

    /// "AAPL crossed above 200.00 at 201.35", "EUR/USD fell 2.1% within 24h to 1.0412",
    /// "TSLA fell 5.0% from its peak 260.00 to 247.00" (`reference`: the peak or low).
    static func message(_ condition: Condition, symbol: String, price: Double, reference: Double?) -> String {
        // The levels, nine firings in ten at 1,000,000 alerts near the price, are appended
        // piece by piece into one string sized once: interpolation grew its own buffer,
        // then copied it.
        func level(_ words: String, _ x: Double) -> String {
            var text = ""
            text.reserveCapacity(symbol.utf8.count + words.utf8.count + 36)
            text += symbol
            text += words
            x.appendPrice(to: &text)
            text += " at "
            price.appendPrice(to: &text)
            return text
        }
        switch condition {
        case let .above(x): return level(" is at or above ", x)
        case let .below(x): return level(" is at or below ", x)
        case let .crossesAbove(x): return level(" crossed above ", x)
        case let .crossesBelow(x): return level(" crossed below ", x)
        case let .rise(_, window), let .fall(_, window):
            let change = abs(price / (reference ?? price) - 1) * 100
            let verb = condition.kind == .rise ? "rose" : "fell"
            return "\(symbol) \(verb) \(change.formattedOneDecimal)% within \(ValueParser.format(seconds: window)) to \(price.formattedPrice)"
        case .riseSinceClose, .fallSinceClose:
            let change = (abs(price / (reference ?? price) - 1) * 100).formattedOneDecimal
            let verb = condition.kind == .riseSinceClose ? "rose" : "fell"
            return "\(symbol) \(verb) \(change)% since the previous close \((reference ?? price).formattedPrice) to \(price.formattedPrice)"
        case let .newHigh(window):
            return "\(symbol) made a new \(ValueParser.formatDays(seconds: window)) high at \(price.formattedPrice) (the highest close was \((reference ?? price).formattedPrice))"
        case let .newLow(window):
            return "\(symbol) made a new \(ValueParser.formatDays(seconds: window)) low at \(price.formattedPrice) (the lowest close was \((reference ?? price).formattedPrice))"
        case .trailingFall, .trailingRise:
            let from = reference ?? price
            let change = (abs(price / from - 1) * 100).formattedOneDecimal
            return condition.kind == .trailingFall
                ? "\(symbol) fell \(change)% from its peak \(from.formattedPrice) to \(price.formattedPrice)"
                : "\(symbol) rose \(change)% from its low \(from.formattedPrice) to \(price.formattedPrice)"
        }
    }
}
