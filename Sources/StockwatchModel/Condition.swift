import Foundation

public enum ConditionKind: String, Codable, Sendable, CaseIterable {
    case above, below
    case crossesAbove = "crosses_above"
    case crossesBelow = "crosses_below"
    case rise, fall
    case trailingFall = "trailing_fall"
    case trailingRise = "trailing_rise"
    case riseSinceClose = "rise_since_close"
    case fallSinceClose = "fall_since_close"
    case newHigh = "new_high"
    case newLow = "new_low"

    /// A change within a window of time (`percent` and `window_seconds`).
    public var isChange: Bool { self == .rise || self == .fall }
    /// A change from the alert's own running peak or trough (`percent` alone).
    public var isTrailing: Bool { self == .trailingFall || self == .trailingRise }
    /// A change from the previous trading day's close (`percent` alone).
    public var isSinceClose: Bool { self == .riseSinceClose || self == .fallSinceClose }
    /// Beyond the highest or lowest daily close of a window (`window_seconds` alone).
    public var isExtreme: Bool { self == .newHigh || self == .newLow }
    /// Judged against the daily history (`daily_prices`).
    public var needsDailyHistory: Bool { isSinceClose || isExtreme }
    /// Its rule takes `percent` rather than a price `value`.
    public var takesPercent: Bool { isChange || isTrailing || isSinceClose }
    /// What its JSON object needs beside `kind`, for messages.
    public var fieldsNeeded: String {
        if isChange { return "percent and window_seconds (and no value)" }
        if isTrailing || isSinceClose { return "percent (and no value or window_seconds)" }
        if isExtreme { return "window_seconds (and no value or percent)" }
        return "value (and no percent or window_seconds)"
    }
}

/// When an alert's rule matches. Exact boundaries are in the man page (EVALUATION).
public enum Condition: Equatable, Sendable {
    case above(Double)
    case below(Double)
    case crossesAbove(Double)
    case crossesBelow(Double)
    case rise(percent: Double, windowSeconds: Int64)
    case fall(percent: Double, windowSeconds: Int64)
    /// A fall of this many percent from the highest price since the alert was (re-)armed.
    case trailingFall(percent: Double)
    /// A rise of this many percent from the lowest price since the alert was (re-)armed.
    case trailingRise(percent: Double)
    /// A rise of this many percent from the previous trading day's close.
    case riseSinceClose(percent: Double)
    case fallSinceClose(percent: Double)
    /// Above the highest daily close of the window before the quote's day (calendar days).
    case newHigh(windowSeconds: Int64)
    /// Below the lowest daily close of the window before the quote's day.
    case newLow(windowSeconds: Int64)

    public init?(kind: ConditionKind, value: Double?, percent: Double?, windowSeconds: Int64?) {
        switch (kind, value, percent, windowSeconds) {
        case let (.above, value?, nil, nil): self = .above(value)
        case let (.below, value?, nil, nil): self = .below(value)
        case let (.crossesAbove, value?, nil, nil): self = .crossesAbove(value)
        case let (.crossesBelow, value?, nil, nil): self = .crossesBelow(value)
        case let (.rise, nil, percent?, window?): self = .rise(percent: percent, windowSeconds: window)
        case let (.fall, nil, percent?, window?): self = .fall(percent: percent, windowSeconds: window)
        case let (.trailingFall, nil, percent?, nil): self = .trailingFall(percent: percent)
        case let (.trailingRise, nil, percent?, nil): self = .trailingRise(percent: percent)
        case let (.riseSinceClose, nil, percent?, nil): self = .riseSinceClose(percent: percent)
        case let (.fallSinceClose, nil, percent?, nil): self = .fallSinceClose(percent: percent)
        case let (.newHigh, nil, nil, window?): self = .newHigh(windowSeconds: window)
        case let (.newLow, nil, nil, window?): self = .newLow(windowSeconds: window)
        default: return nil
        }
    }

    public var kind: ConditionKind {
        switch self {
        case .above: .above
        case .below: .below
        case .crossesAbove: .crossesAbove
        case .crossesBelow: .crossesBelow
        case .rise: .rise
        case .fall: .fall
        case .trailingFall: .trailingFall
        case .trailingRise: .trailingRise
        case .riseSinceClose: .riseSinceClose
        case .fallSinceClose: .fallSinceClose
        case .newHigh: .newHigh
        case .newLow: .newLow
        }
    }

    public var value: Double? {
        switch self {
        case let .above(v), let .below(v), let .crossesAbove(v), let .crossesBelow(v): v
        default: nil
        }
    }

    public var percent: Double? {
        switch self {
        case let .rise(p, _), let .fall(p, _), let .trailingFall(p), let .trailingRise(p), let .riseSinceClose(p), let .fallSinceClose(p): p
        default: nil
        }
    }

    public var windowSeconds: Int64? {
        switch self {
        case let .rise(_, w), let .fall(_, w), let .newHigh(w), let .newLow(w): w
        default: nil
        }
    }

    /// Short human form for tables: `>= 200`, `crosses above 1.1`, `rise 5% within 1h`.
    public var summary: String {
        switch self {
        case let .above(v): "above \(v.formattedPrice)"
        case let .below(v): "below \(v.formattedPrice)"
        case let .crossesAbove(v): "crosses above \(v.formattedPrice)"
        case let .crossesBelow(v): "crosses below \(v.formattedPrice)"
        case let .rise(p, w): "rise \(p.formattedNumber)% within \(ValueParser.format(seconds: w))"
        case let .fall(p, w): "fall \(p.formattedNumber)% within \(ValueParser.format(seconds: w))"
        case let .trailingFall(p): "trailing fall \(p.formattedNumber)% from the peak"
        case let .trailingRise(p): "trailing rise \(p.formattedNumber)% from the low"
        case let .riseSinceClose(p): "rise \(p.formattedNumber)% since the previous close"
        case let .fallSinceClose(p): "fall \(p.formattedNumber)% since the previous close"
        case let .newHigh(w): "new \(ValueParser.formatDays(seconds: w)) high"
        case let .newLow(w): "new \(ValueParser.formatDays(seconds: w)) low"
        }
    }
}

public enum AlertTrigger: String, Codable, Sendable, CaseIterable {
    /// Fires once, then the alert is `fired` for good.
    case once
    /// Fires when the condition becomes true, then waits until it is false again.
    case rearm
    /// Fires on every quote where the condition holds.
    case every
}

public enum AlertState: String, Codable, Sendable, CaseIterable {
    case armed, firing, fired, paused, expired

    /// States that evaluate and fetch care about.
    public var isActive: Bool { self == .armed || self == .firing }
}

extension Double {
    /// Prices keep at least two decimals: 200 -> "200.00", 1.08505 -> "1.08505".
    public var formattedPrice: String {
        var text = ""
        appendPrice(to: &text)
        return text
    }

    /// `formattedPrice` appended to `text`, counted in bytes: the firings' messages are
    /// built this way, and the Character view's search for the dot (grapheme breaking),
    /// with a String for each piece, was half of a message's cost (3% of a near tick).
    public func appendPrice(to text: inout String) {
        let plain = formattedNumber
        text += plain
        guard let dot = plain.utf8.firstIndex(of: UInt8(ascii: ".")) else {
            text += ".00"
            return
        }
        if plain.utf8.distance(from: dot, to: plain.utf8.endIndex) == 2 { text += "0" }
    }

    /// One decimal, as C's `%.1f` writes it ("0.5", "12.0"): for a change in a message.
    /// A change (a positive value below 10^14) is rounded here, exactly as printf rounds
    /// (`tenthsRoundedAsPrintf`): `vsnprintf` cost 6,700 instructions a rise's or fall's
    /// message, 2% of a steady evaluate at 100,000 alerts. Anything else goes to
    /// `vsnprintf` into a stack buffer (Foundation's `String(format:)` builds an NSString
    /// and parses the format for each call).
    public var formattedOneDecimal: String {
        if let tenths = tenthsRoundedAsPrintf {
            var text = String(tenths / 10)
            text += "."
            text.unicodeScalars.append(Unicode.Scalar(UInt8(ascii: "0") + UInt8(tenths % 10)))
            return text
        }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            let length = withVaList([self]) { vsnprintf(buffer.baseAddress!, 64, "%.1f", $0) }
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: Int(min(max(length, 0), 63))), as: UTF8.self)
        }
    }

    /// The value in tenths, rounded half to even from its exact binary value, as `%.1f`
    /// does; nil outside [+0, 10^14), where printf is left to do it. x·10 is the rounded
    /// product plus its error, which a fused multiply-add gives exactly; below 2^52 the
    /// product's fraction less a half is then exact whenever it could decide the
    /// rounding, and the error, under half an ulp of the product, can only break a tie.
    var tenthsRoundedAsPrintf: Int64? {
        guard sign == .plus, self < 1e14 else { return nil }
        let product = self * 10
        let error = (-product).addingProduct(self, 10)
        let whole = product.rounded(.down)
        let fraction = product - whole
        var tenths = Int64(whole)
        if fraction > 0.5 || (fraction == 0.5 && (error > 0 || (error == 0 && tenths % 2 == 1))) { tenths += 1 }
        return tenths
    }

    /// Shortest exact decimal form without a trailing ".0".
    public var formattedNumber: String {
        if self == rounded(), abs(self) < 1e15 { return String(Int64(self)) }
        return description  // what interpolation writes, without its buffer
    }
}
