import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct AlertListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List alerts.")

    @Option(help: ArgumentHelp("Only this user's alerts.", valueName: "name")) var user: String?
    @Option(help: ArgumentHelp("Only alerts on this symbol.", valueName: "symbol")) var symbol: String?
    @Option(help: ArgumentHelp("Only alerts in this state: armed, firing, fired, paused or expired.", valueName: "state")) var state: AlertState?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, config) = try global.open(readOnly: true)
        let service = AlertService(database: database, config: config), filter = AlertService.Filter(user: user, symbol: symbol, state: state)
        if global.json {
            // A page at a time, in constant memory: the same array as one encode would print.
            let writer = Output.JSONArrayWriter()
            try flagNames(["symbol": "--symbol"]) { () throws(StockwatchError) in
                try service.forEachPage(filter) { (page) throws(StockwatchError) in writer.write(page) }
            }
            return writer.finish()
        }
        let alerts = try flagNames(["symbol": "--symbol"]) { () throws(StockwatchError) in try service.list(filter) }
        Output.table(
            ["ID", "USER", "SYMBOL", "CONDITION", "TRIGGER", "STATE", "CHANNELS", "LAST FIRED", "NOTE"],
            alerts.map(\.row), rightAligned: [0])
    }
}

/// Spelled out: ArgumentParser's defaults for a `CaseIterable` raw enum build a key path
/// (`\.rawValue.defaultValueDescription`) at run time on every parse, which resolves its
/// types by name: 2M instructions of a cold `alert list`.
extension AlertState: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public var defaultValueDescription: String { rawValue }
    public static var allValueStrings: [String] { allCases.map { $0.rawValue } }
}

extension AlertJSON {
    var row: [String] {
        let cooldown = (cooldownSeconds ?? 0) > 0 ? " (cooldown \(ValueParser.format(seconds: cooldownSeconds!)))" : ""
        let snoozed = snoozedUntil.map { $0 > Date() ? ", snoozed until \(Output.time($0))" : "" } ?? ""
        let active = schedule.map { ", active \($0)" } ?? ""
        return [
            "\(id ?? 0)", user ?? "", symbol, condition.summary, (trigger?.rawValue ?? "") + cooldown,
            (state?.rawValue ?? "") + snoozed + active, (channels ?? []).joined(separator: ","), Output.time(lastFiredAt), note ?? "",
        ]
    }
}
