import ArgumentParser
import StockwatchCore
import StockwatchServer

struct AlertAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add an alert; prints its id.",
        discussion: "Give exactly one condition. PRICE is a plain decimal, PERCENT is written 5 or 5%, DURATION 90s, 15m, 4h, 2d, 1w or 1h30m."
    )

    // .unconditional: a value that starts with a dash ("--above -5") is the option's
    // value, refused with a reason, not a missing value followed by an unknown option.
    @Argument(help: "A stock ticker (AAPL, BRK.B, VOD.L) or a currency pair (EUR/USD).") var symbol: String
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire when the price is at or above PRICE.", valueName: "price")) var above: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire when the price is at or below PRICE.", valueName: "price")) var below: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire when the price moves from below PRICE to at or above it.", valueName: "price")) var crossesAbove: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire when the price moves from above PRICE to at or below it.", valueName: "price")) var crossesBelow: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire when the price rose PERCENT within --within.", valueName: "percent")) var rise: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire when the price fell PERCENT within --within.", valueName: "percent")) var fall: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire when the price fell PERCENT from its highest since the alert was armed.", valueName: "percent")) var trailingFall: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire when the price rose PERCENT from its lowest since the alert was armed.", valueName: "percent")) var trailingRise: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire above the highest daily close of the last DAYS (20d, 52w) before today.", valueName: "days")) var newHigh: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Fire below the lowest daily close of the last DAYS (20d, 52w) before today.", valueName: "days")) var newLow: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("The window of --rise and --fall.", valueName: "duration")) var within: String?
    @Option(help: ArgumentHelp("close: --rise and --fall count from the previous trading day's close.", valueName: "close")) var since: String?
    @Option(help: ArgumentHelp("once, rearm (default) or every.", valueName: "mode")) var trigger: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("At least this long between two notifications.", valueName: "duration")) var cooldown: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Re-arm only once the price is PERCENT back past the level (rearm only).", valueName: "percent")) var rearmMargin: String?
    @Option(help: ArgumentHelp("Stop at this date (2026-12-31, 2026-12-31T18:00:00Z) or after this duration.", valueName: "date|duration")) var expires: String?
    @Option(help: ArgumentHelp("A channel from the config; repeat for several (default: [alerts] default_notify, else stdout).", valueName: "channel")) var notify: [String] = []
    @Option(help: ArgumentHelp("The owner (default: the user named default).", valueName: "name")) var user: String?
    @Option(help: ArgumentHelp("Free text shown with the alert.", valueName: "text")) var note: String?
    @Option(help: ArgumentHelp("Notify only within this weekly schedule on the user's clock, e.g. \"mon-fri 09:30-16:00\".", valueName: "days HH:MM-HH:MM"))
    var active: String?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        var input = AlertInput(symbol: symbol)
        (input.above, input.below, input.crossesAbove, input.crossesBelow) = (above, below, crossesAbove, crossesBelow)
        (input.rise, input.fall, input.within) = (rise, fall, within)
        (input.trailingFall, input.trailingRise, input.newHigh, input.newLow, input.since) = (trailingFall, trailingRise, newHigh, newLow, since)
        (input.trigger, input.cooldown, input.rearmMargin, input.expires) = (trigger, cooldown, rearmMargin, expires)
        (input.notify, input.user, input.note, input.active) = (notify, user, note, active)
        let (database, config) = try global.open()
        let service = AlertService(database: database, config: config)
        let alert = try service.add(input)
        if global.json { Output.json(alert) } else { print(alert.id ?? 0) }
        if let symbol = try service.missingHistory(alert) { Output.noHistoryWarning(symbols: [symbol], json: global.json) }
    }
}
