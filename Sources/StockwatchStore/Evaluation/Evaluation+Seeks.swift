import Foundation
import StockwatchModel

/// The candidate seeks, the same conditions on both backends: an alert they leave out
/// could not have changed with the new prices.
extension Evaluation {
    /// One of the candidate seeks: alerts whose rule the new price range could fire or
    /// re-arm. Each backend joins its own `source` rows (aliases: `a` the alert, `b` the
    /// symbol's fresh price range, `r` the range of one basis's references, `t` a trailing
    /// rule's row in `alert_trails`).
    struct Seek {
        /// `levels`: the derived levels (`levelSeeks`), in an index of their own.
        enum Source { case rising, falling, changes, sinceClose, trailing, levels }
        let source: Source
        let condition: String

        /// The reference basis it joins (`r.basis = '...'` in its condition), nil for the
        /// seeks without references: a seek whose basis no reference has finds nothing.
        var basis: String? {
            guard let range = condition.range(of: "r.basis = '") else { return nil }
            let rest = condition[range.upperBound...]
            return rest.firstIndex(of: "'").map { String(rest[..<$0]) }
        }

        /// The one kind it seeks (`a.kind = '...'` in its condition), nil for the seeks of
        /// several kinds.
        var kind: ConditionKind? {
            guard let range = condition.range(of: "a.kind = '") else { return nil }
            let rest = condition[range.upperBound...]
            return rest.firstIndex(of: "'").flatMap { ConditionKind(rawValue: String(rest[..<$0])) }
        }

        /// A kind's bit in a reference row's `kinds` (SQLite's `evaluate_references`): the
        /// kinds some alert of that symbol and basis has.
        static func bit(_ kind: ConditionKind) -> Int64 { 1 << Int64(ConditionKind.allCases.firstIndex(of: kind)!) }

        /// Whether it seeks armed alerts of one kind, whose price bound (`value` or
        /// `percent`) is a range in the index after the state. Firing alerts are few, and
        /// their bound depends on each alert's margin.
        var seeksArmedRange: Bool { source != .trailing && condition.contains("a.state = 'armed'") }
    }

    static let seeks: [Seek] = {
        let s = slack
        return [
            // Armed alerts by the level range the prices reached, firing ones to test re-arming.
            // An armed crossing fires only from a previous price under its level: at or
            // under one of those a rise cannot cross it (`levelBounds`).
            Seek(source: .rising, condition: """
                a.state = 'armed' AND a.value <= b.high * (1 + \(s)) AND (a.kind = 'above' OR a.value > b.rising_from * (1 - \(s)))
                """),
            Seek(source: .rising, condition: "a.state = 'firing' AND b.low < a.value * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s))"),
            Seek(source: .falling, condition: """
                a.state = 'armed' AND a.value >= b.low * (1 - \(s)) AND (a.kind = 'below' OR a.value < b.falling_to * (1 + \(s)))
                """),
            Seek(source: .falling, condition: "a.state = 'firing' AND b.high > a.value * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s))"),
            Seek(source: .changes, condition: """
                a.kind = 'rise' AND r.basis = 'window' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (b.high / (r.low * (1 - \(s))) - 1) * 100 END
                """),
            Seek(source: .changes, condition: """
                a.kind = 'rise' AND r.basis = 'window' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.low < r.high * (1 + a.percent / 100.0) * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s)))
                """),
            Seek(source: .changes, condition: """
                a.kind = 'fall' AND r.basis = 'window' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (1 - b.low / (r.high * (1 + \(s)))) * 100 END
                """),
            Seek(source: .changes, condition: """
                a.kind = 'fall' AND r.basis = 'window' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.high > r.low * (1 - a.percent / 100.0) * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s)))
                """),
            // Since the previous close: as rise and fall, the reference the same all day.
            Seek(source: .sinceClose, condition: """
                a.kind = 'rise_since_close' AND r.basis = 'close' AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (b.high / (r.low * (1 - \(s))) - 1) * 100 END
                """),
            Seek(source: .sinceClose, condition: """
                a.kind = 'rise_since_close' AND r.basis = 'close' AND a.state = 'firing'
                AND (r.missing OR b.low < r.high * (1 + a.percent / 100.0) * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s)))
                """),
            Seek(source: .sinceClose, condition: """
                a.kind = 'fall_since_close' AND r.basis = 'close' AND a.state = 'armed'
                AND a.percent <= CASE WHEN r.missing THEN 1e9 ELSE (1 - b.low / (r.high * (1 + \(s)))) * 100 END
                """),
            Seek(source: .sinceClose, condition: """
                a.kind = 'fall_since_close' AND r.basis = 'close' AND a.state = 'firing'
                AND (r.missing OR b.high > r.low * (1 - a.percent / 100.0) * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s)))
                """),
            // New highs and lows: past the window's extreme close (their window is in the
            // rise/fall index), or for a firing one back inside it by the margin.
            Seek(source: .changes, condition: """
                a.kind = 'new_high' AND r.basis = 'high' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND (r.missing OR b.high > r.low * (1 - \(s)))
                """),
            Seek(source: .changes, condition: """
                a.kind = 'new_high' AND r.basis = 'high' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.low < r.high * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s)))
                """),
            Seek(source: .changes, condition: """
                a.kind = 'new_low' AND r.basis = 'low' AND a.window_seconds = r.window_seconds AND a.state = 'armed'
                AND (r.missing OR b.low < r.high * (1 + \(s)))
                """),
            Seek(source: .changes, condition: """
                a.kind = 'new_low' AND r.basis = 'low' AND a.window_seconds = r.window_seconds AND a.state = 'firing'
                AND (r.missing OR b.high > r.low * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s)))
                """),
            // Trailing rules: a new peak (or low) moves the trail and is written; otherwise
            // only a price that reaches the trail's level, or takes a firing one back.
            Seek(source: .trailing, condition: """
                a.kind = 'trailing_fall' AND a.state IN ('armed', 'firing') AND (t.trailing_from IS NULL OR b.high > t.trailing_from * (1 - \(s))
                OR (a.state = 'armed' AND b.low <= t.trailing_from * (1 - a.percent / 100.0) * (1 + \(s)))
                OR (a.state = 'firing' AND b.high > t.trailing_from * (1 - a.percent / 100.0) * (1 + a.rearm_margin_percent / 100.0) * (1 - \(s))))
                """),
            Seek(source: .trailing, condition: """
                a.kind = 'trailing_rise' AND a.state IN ('armed', 'firing') AND (t.trailing_from IS NULL OR b.low < t.trailing_from * (1 + \(s))
                OR (a.state = 'armed' AND b.high >= t.trailing_from * (1 + a.percent / 100.0) * (1 - \(s)))
                OR (a.state = 'firing' AND b.low < t.trailing_from * (1 + a.percent / 100.0) * (1 - a.rearm_margin_percent / 100.0) * (1 + \(s))))
                """),
        ]
    }()

    /// What a trailing seek's rule does when it merely moves its trail: armed, its trail
    /// passed by the batch's highest (lowest) price, and its level, even from that new
    /// peak (low), reached by no price of the batch (`1 + slack` is far above the
    /// machine's tolerance: such a rule cannot hold). Judging it would only move the trail
    /// to `trail`, which a backend may take as is instead (SQLite: half the trailing rules
    /// of a tick of `Benchmarks/evaluate`'s trailing mix, whose reading and judging as
    /// candidates was a third of that tick).
    static let trailMoves: [ConditionKind: (condition: String, trail: String)] = {
        let s = slack
        return [
            .trailingFall: ("""
                t.trailing_from IS NOT NULL AND a.state = 'armed' AND b.high > t.trailing_from
                AND b.low > max(t.trailing_from, b.high) * (1 - a.percent / 100.0) * (1 + \(s))
                """, "b.high"),
            .trailingRise: ("""
                t.trailing_from IS NOT NULL AND a.state = 'armed' AND b.low < t.trailing_from
                AND b.high < min(t.trailing_from, b.low) * (1 + a.percent / 100.0) * (1 - \(s))
                """, "b.low"),
        ]
    }()

    /// The seeks worth running when the references have these bases (`Seek.basis`): a seek
    /// of a basis no reference has finds nothing, yet is planned and run with the rest (both
    /// backends; 8 of the 18 at `Benchmarks/evaluate`'s standard mix).
    static func seeks(forBases bases: Set<String>) -> [Seek] {
        (seeks + levelSeeks).filter { $0.basis.map(bases.contains) ?? true }
    }

    /// The derived levels stored `armed` (SQLite's migration v19, PostgreSQL's v13), as the
    /// indexes' WHERE spells them.
    static let derivedArmed = derivedArmedSQL { "a.\($0)" }

    /// The seeks of the derived levels (`derivesStateSQL`), in their own index by
    /// level. Such an alert fires only if the prices cross its level towards its side
    /// (`b.rising_*`, `b.falling_*`, see `levelBounds`); a derived alert that only re-arms
    /// writes nothing and is not read.
    static let levelSeeks: [Seek] = {
        let s = slack
        return [
            Seek(source: .levels, condition: "a.kind = 'above' AND a.value > b.rising_from * (1 - \(s)) AND a.value <= b.rising_to * (1 + \(s))"),
            Seek(source: .levels, condition: "a.kind = 'below' AND a.value >= b.falling_from * (1 - \(s)) AND a.value < b.falling_to * (1 + \(s))"),
        ]
    }()

    /// A symbol's bounds for `levelSeeks` (`b.rising_from`, `b.rising_to`, `b.falling_from`,
    /// `b.falling_to`). An `above` level fires on a price at or over it after one under it
    /// (the last judged price, then each new one): its level lies above the lowest of
    /// those and at or below the highest new price. A `below` level the other way round.
    /// With no price judged it is armed, as every new alert is, and the seek is the armed
    /// seek's one-sided range. A level only crossed away from its side re-arms: its state
    /// is still the last judged price's, and nothing is written (a fall through 20
    /// `above` levels read all 20 before).
    /// `previous`: the prices a crossing may cross from (`SymbolQuotes.previousPrices`),
    /// inside the same bounds, so that the armed crossings' seeks share them: a crossing
    /// at or under every one of them cannot be crossed upwards (at the near shape's
    /// ticks, a third of the armed crossings read).
    static func levelBounds(_ range: Range, judged: Double?, previous: Range = Range()) -> LevelBounds {
        LevelBounds(
            risingFrom: judged.map { min($0, range.low, previous.low) } ?? -.infinity, risingTo: range.high,
            fallingFrom: range.low, fallingTo: judged.map { max($0, range.high, previous.high) } ?? .infinity)
    }

    /// `levelBounds`' four values: a struct, not an array, as 50,000 arrays (one a symbol
    /// at the near shape) were, with their reference counting, a third of `summarise`.
    struct LevelBounds {
        let risingFrom: Double
        let risingTo: Double
        let fallingFrom: Double
        let fallingTo: Double
        /// In the batch table's column order.
        static var columns: [KeyPath<LevelBounds, Double>] { [\.risingFrom, \.risingTo, \.fallingFrom, \.fallingTo] }
    }

    /// A candidate's running peak or low, looked up by its key (both backends): for reads
    /// that have not joined `alert_trails` as `t`, as the trailing seek has.
    static let lookedUpTrail = "CASE WHEN a.kind IN ('trailing_fall', 'trailing_rise') THEN (SELECT tr.trailing_from FROM alert_trails tr WHERE tr.alert_id = a.id) END"
}
