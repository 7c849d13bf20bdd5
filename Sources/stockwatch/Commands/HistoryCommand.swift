import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "List notifications newest first, or with --prices the stored quotes.")

    @Flag(help: "List stored quotes instead of notifications.") var prices = false
    @Flag(help: "With --prices: the daily closes instead of the quotes.") var daily = false
    @Option(help: ArgumentHelp("Only this symbol.", valueName: "symbol")) var symbol: String?
    @Option(name: .customLong("alert"), help: ArgumentHelp("Only notifications of this alert.", valueName: "id")) var alertID: Int64?
    @Option(help: ArgumentHelp("Only since this date or for this long back (24h, 7d).", valueName: "date|duration")) var since: String?
    @Option(help: ArgumentHelp("Only notifications the app left in this state: unread, read or dismissed.", valueName: "state")) var state: String?
    @Option(help: ArgumentHelp("At most this many rows.", valueName: "n")) var limit: Int = 100
    @OptionGroup var global: GlobalOptions

    static let flags = ["symbol": "--symbol"]

    func run() throws {
        guard limit > 0 else { throw StockwatchError.invalidValue(option: "--limit", value: "\(limit)", reason: "must be at least 1") }
        let state = try state.map { (text) throws(StockwatchError) in try NotificationState.parse(text, option: "--state") }
        let since = try since.map { (text) throws(StockwatchError) in try ValueParser.since(text, option: "--since", now: Date()) }
        let (database, _) = try global.open(readOnly: true)
        let service = HistoryService(database: database)
        if daily && !prices { throw StockwatchError.usage("--daily goes with --prices") }
        if prices {
            if alertID != nil { throw StockwatchError.usage("--alert goes with notifications, not --prices") }
            if state != nil { throw StockwatchError.usage("--state goes with notifications, not --prices") }
            if daily {
                let days = try flagNames(Self.flags) { () throws(StockwatchError) in try service.dailyPrices(symbol: symbol, since: since, limit: limit) }
                if global.json { return Output.json(days) }
                func price(_ value: Double?) -> String { value?.formattedPrice ?? "-" }
                Output.table(
                    ["SYMBOL", "DAY", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME", "SOURCE"],
                    days.map { [$0.symbol, $0.day, price($0.open), price($0.high), price($0.low), $0.close.formattedPrice,
                                $0.volume.map(\.formattedNumber) ?? "-", $0.source.rawValue] },
                    rightAligned: [2, 3, 4, 5, 6])
                return
            }
            let quotes = try flagNames(Self.flags) { () throws(StockwatchError) in try service.quotes(symbol: symbol, since: since, limit: limit) }
            if global.json { return Output.json(quotes) }
            Output.table(
                ["SYMBOL", "PRICE", "PROVIDER", "OBSERVED"],
                quotes.map { [$0.symbol, $0.price.formattedPrice, $0.provider, Output.time($0.observedAt)] }, rightAligned: [1])
            return
        }
        let notifications = try flagNames(Self.flags) { () throws(StockwatchError) in
            try service.notifications(.init(symbol: symbol, alertID: alertID, since: since, state: state, limit: limit))
        }
        if global.json { return Output.json(notifications) }
        Output.table(
            ["ID", "TIME", "ALERT", "USER", "STATE", "MESSAGE", "DELIVERIES"],
            notifications.map { n in
                let deliveries = n.deliveries.map { "\($0.channel):\($0.status.rawValue)" }.joined(separator: " ")
                return ["\(n.id)", Output.time(n.createdAt), n.alertId.map(String.init) ?? "-", n.user, n.state.rawValue, n.message, deliveries]
            },
            rightAligned: [0, 2])
    }
}
