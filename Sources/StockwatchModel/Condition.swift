import Foundation

public enum ConditionKind: String, Codable, Sendable, CaseIterable {
    case above, below
    case crossesAbove = "crosses_above"
    case crossesBelow = "crosses_below"
    case rise, fall
    case trailingFall = "trailing_fall"
    case trailingRise = "trailing_rise"

    /// A change within a window of time (`percent` and `window_seconds`).
    public var isChange: Bool { self == .rise || self == .fall }
    /// A change from the alert's own running peak or trough (`percent` alone).
    public var isTrailing: Bool { self == .trailingFall || self == .trailingRise }
    /// Its rule takes `percent` rather than a price `value`.
    public var takesPercent: Bool { isChange || isTrailing }
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
        }
    }

    public var value: Double? {
        switch self {
        case let .above(v), let .below(v), let .crossesAbove(v), let .crossesBelow(v): v
        case .rise, .fall, .trailingFall, .trailingRise: nil
        }
    }

    public var percent: Double? {
        switch self {
        case let .rise(p, _), let .fall(p, _), let .trailingFall(p), let .trailingRise(p): p
        default: nil
        }
    }

    public var windowSeconds: Int64? {
        switch self {
        case let .rise(_, w), let .fall(_, w): w
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
        let plain = formattedNumber
        guard let dot = plain.firstIndex(of: ".") else { return plain + ".00" }
        return plain.distance(from: dot, to: plain.endIndex) == 2 ? plain + "0" : plain
    }

    /// Shortest exact decimal form without a trailing ".0".
    public var formattedNumber: String {
        if self == rounded(), abs(self) < 1e15 { return String(Int64(self)) }
        return "\(self)"
    }
}
