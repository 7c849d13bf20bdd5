import ArgumentParser
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct AlertShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one alert.")

    @Argument(help: "The alert's id.") var id: Int64
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, config) = try global.open(readOnly: true)
        let alert = try AlertService(database: database, config: config).show(id: id)
        if global.json { return Output.json(alert) }
        let row = alert.row
        var fields = [
            ("id", row[0]), ("user", row[1]), ("symbol", row[2]), ("condition", row[3]), ("trigger", row[4]),
            ("rearm margin", "\(alert.rearmMarginPercent ?? 0)%"), ("state", row[5]), ("channels", row[6]),
            ("created", Output.time(alert.createdAt)), ("last fired", row[7]), ("expires", Output.time(alert.expiresAt)),
            ("snoozed until", Output.time(alert.snoozedUntil)), ("schedule", alert.schedule ?? "-"), ("note", row[8]),
        ]
        if alert.condition.kind.isTrailing {
            // The running peak (low) its percent is measured from, once it has judged a price.
            let from = alert.condition.kind == .trailingFall ? "peak" : "low"
            fields.insert((from, alert.trailingFrom.map(\.formattedPrice) ?? "-"), at: 4)
        }
        Output.table(["FIELD", "VALUE"], fields.map { [$0.0, $0.1] })
    }
}
