import ArgumentParser
import StockwatchCore
import StockwatchServer

struct AlertResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Arm a paused alert again; it starts at the newest quote.")

    @Argument(help: "The alert's id.") var id: Int64
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, config) = try global.open()
        let alert = try AlertService(database: database, config: config).resume(id: id)
        if global.json { Output.json(alert) } else if global.verbose { print("alert \(id) is \(alert.state?.rawValue ?? "")") }
    }
}
