import Foundation
import StockwatchModel

/// An alert as typed on the command line: raw strings, checked by `spec(config:now:)`.
/// Errors name the flag: this form parses its own flags, and renames the fields that
/// `AlertSpec.validated` names (`flags`).
public struct AlertInput: Sendable {
    public var symbol: String
    public var above: String?
    public var below: String?
    public var crossesAbove: String?
    public var crossesBelow: String?
    public var rise: String?
    public var fall: String?
    public var trailingFall: String?
    public var trailingRise: String?
    public var newHigh: String?
    public var newLow: String?
    public var within: String?
    /// `close`: --rise and --fall count from the previous trading day's close.
    public var since: String?
    public var trigger: String?
    public var cooldown: String?
    public var rearmMargin: String?
    public var expires: String?
    public var notify: [String] = []
    public var user: String?
    public var note: String?
    public var active: String?

    public init(symbol: String) { self.symbol = symbol }

    /// The flag of each field `AlertSpec.validated` may name ("condition" is the flag given).
    static let flags = [
        "symbol": "SYMBOL", "window_seconds": "--within", "cooldown_seconds": "--cooldown",
        "rearm_margin_percent": "--rearm-margin", "expires_at": "--expires", "channels": "--notify", "note": "--note", "schedule": "--active",
    ]

    public func spec(config: Config, now: Date) throws(StockwatchError) -> AlertSpec {
        let symbol = try Symbol.parse(self.symbol)
        let given: [(String, String)] = [
            ("--above", above), ("--below", below), ("--crosses-above", crossesAbove),
            ("--crosses-below", crossesBelow), ("--rise", rise), ("--fall", fall),
            ("--trailing-fall", trailingFall), ("--trailing-rise", trailingRise), ("--new-high", newHigh), ("--new-low", newLow),
        ].compactMap { name, value in value.map { (name, $0) } }
        guard let (option, text) = given.first else {
            throw .usage("no condition: give one of --above, --below, --crosses-above, --crosses-below, --rise, --fall, --trailing-fall, --trailing-rise, --new-high or --new-low")
        }
        guard given.count == 1 else {
            throw .usage("give exactly one condition, not \(given.map(\.0).joined(separator: " and "))")
        }
        if let since, since != "close" {
            throw .invalidValue(option: "--since", value: since, reason: "the only reference is close (the previous trading day's close)")
        }
        if since != nil, option != "--rise", option != "--fall" { throw .usage("--since close goes only with --rise or --fall") }
        let condition: Condition
        switch option {
        case "--rise" where since != nil, "--fall" where since != nil:
            if within != nil { throw .usage("give --within or --since close, not both") }
            let percent = try ValueParser.percent(text, option: option)
            if option == "--fall", percent >= 100 { throw .invalidValue(option: option, value: text, reason: "a price cannot fall 100% or more") }
            condition = option == "--rise" ? .riseSinceClose(percent: percent) : .fallSinceClose(percent: percent)
        case "--new-high", "--new-low":
            if within != nil { throw .usage("--within goes only with --rise or --fall; \(option) takes its window itself (\(option) 52w)") }
            let window = try ValueParser.dayWindow(text, option: option)
            condition = option == "--new-high" ? .newHigh(windowSeconds: window) : .newLow(windowSeconds: window)
        case "--rise", "--fall":
            guard let within else { throw .usage("\(option) needs --within DURATION (e.g. --within 24h) or --since close") }
            let percent = try ValueParser.percent(text, option: option)
            let window = try ValueParser.duration(within, option: "--within")
            if option == "--fall", percent >= 100 { throw .invalidValue(option: option, value: text, reason: "a price cannot fall 100% or more") }
            condition = option == "--rise" ? .rise(percent: percent, windowSeconds: window) : .fall(percent: percent, windowSeconds: window)
        case "--trailing-fall", "--trailing-rise":
            if within != nil { throw .usage("--within goes only with --rise or --fall; \(option) follows the price since the alert was armed") }
            let percent = try ValueParser.percent(text, option: option)
            if option == "--trailing-fall", percent >= 100 { throw .invalidValue(option: option, value: text, reason: "a price cannot fall 100% or more") }
            condition = option == "--trailing-fall" ? .trailingFall(percent: percent) : .trailingRise(percent: percent)
        default:
            if within != nil { throw .usage("--within goes only with --rise or --fall") }
            let price = try ValueParser.price(text, option: option)
            condition = switch option {
            case "--above": .above(price)
            case "--below": .below(price)
            case "--crosses-above": .crossesAbove(price)
            default: .crossesBelow(price)
            }
        }
        var spec = AlertSpec(symbol: symbol.text, condition: condition)
        if let trigger {
            guard let parsed = AlertTrigger(rawValue: trigger) else {
                throw .invalidValue(option: "--trigger", value: trigger, reason: "one of once, rearm, every")
            }
            spec.trigger = parsed
        }
        if let cooldown { spec.cooldownSeconds = try ValueParser.duration(cooldown, option: "--cooldown", allowZero: true) }
        if let rearmMargin {
            spec.rearmMarginPercent = try ValueParser.percent(rearmMargin, option: "--rearm-margin")
        }
        if let expires { spec.expiresAt = try ValueParser.expiry(expires, option: "--expires", now: now) }
        spec.channels = notify.isEmpty ? nil : notify
        spec.user = user
        spec.note = note
        spec.schedule = active
        do {
            return try spec.validated(config: config, now: now)
        } catch {
            throw error.renamingField(Self.flags.merging(["condition": option]) { _, given in given })
        }
    }
}

extension AlertSpec {
    /// Checks every field the way the schema's constraints will, but with messages that
    /// name the culprit by its JSON field (the API's and import's name; the CLI renames
    /// them to its flags). Returns the spec with its symbol canonical and channels resolved.
    public func validated(config: Config, now: Date) throws(StockwatchError) -> AlertSpec {
        var spec = self
        spec.symbol = try Symbol.parse(symbol, option: "symbol").text
        let conditionField = "condition"
        if let value = condition.value, !(value.isFinite && value > 0 && value < ValueParser.maximumPrice) {
            throw .invalidValue(option: conditionField, value: "\(value)", reason: "a price must be a finite number greater than 0")
        }
        if let percent = condition.percent, !(percent.isFinite && percent > 0 && percent <= 1000) {
            throw .invalidValue(option: conditionField, value: "\(percent)", reason: "a percentage must be greater than 0 and at most 1000")
        }
        if [.fall, .trailingFall, .fallSinceClose].contains(condition.kind), let percent = condition.percent, percent >= 100 {
            throw .invalidValue(option: conditionField, value: "\(percent)", reason: "a price cannot fall 100% or more")
        }
        if let window = condition.windowSeconds, !(1...ValueParser.maximumDurationSeconds).contains(window) {
            throw .invalidValue(option: "window_seconds", value: "\(window)", reason: "must be between 1 second and 10 years")
        }
        if condition.kind.isExtreme, let window = condition.windowSeconds, window % 86_400 != 0 {
            throw .invalidValue(option: "window_seconds", value: "\(window)", reason: "a new high or low counts whole days (a multiple of 86400)")
        }
        guard (0...ValueParser.maximumDurationSeconds).contains(cooldownSeconds) else {
            throw .invalidValue(option: "cooldown_seconds", value: "\(cooldownSeconds)", reason: "must be between 0 and 10 years")
        }
        if rearmMarginPercent != 0 {
            guard rearmMarginPercent.isFinite, rearmMarginPercent > 0, rearmMarginPercent < 100 else {
                throw .invalidValue(option: "rearm_margin_percent", value: "\(rearmMarginPercent)", reason: "must be greater than 0 and less than 100")
            }
            guard trigger == .rearm else {
                throw .invalidValue(option: "rearm_margin_percent", value: "\(rearmMarginPercent)", reason: "applies only to the rearm trigger, not \(trigger.rawValue)")
            }
        }
        if let expiresAt, expiresAt <= now, state != .expired, state != .fired {
            throw .invalidValue(option: "expires_at", value: ISO8601DateFormatter().string(from: expiresAt), reason: "lies in the past")
        }
        let channels = self.channels ?? config.defaultNotify
        guard !channels.isEmpty else { throw .invalidValue(option: "channels", value: "", reason: "name at least one channel") }
        for channel in channels where config.channel(named: channel) == nil {
            let source = config.file.map { " in \($0)" } ?? " (no config file)"
            throw .invalidValue(option: "channels", value: channel, reason: "no channel of that name\(source); known: \(config.channelNames.joined(separator: ", "))")
        }
        var seen = Set<String>()
        spec.channels = channels.filter { seen.insert($0).inserted }
        // Code points, as JSON Schema's maxLength counts them.
        if let schedule { spec.schedule = try WeeklySchedule.parse(schedule, option: "schedule").description }
        if let note, note.unicodeScalars.count > 1000 {
            throw .invalidValue(option: "note", value: note, reason: "at most 1000 characters")
        }
        return spec
    }
}
