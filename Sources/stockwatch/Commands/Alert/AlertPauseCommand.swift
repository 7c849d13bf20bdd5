import ArgumentParser
import StockwatchCore
import StockwatchServer

struct AlertPauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Stop evaluating an alert until it is resumed.")

    @Argument(help: "The alert's id.") var id: Int64
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, config) = try global.open()
        let alert = try AlertService(database: database, config: config).pause(id: id)
        if global.json { Output.json(alert) } else if global.verbose { print("alert \(id) is \(alert.state?.rawValue ?? "")") }
    }
}
