import ArgumentParser
import StockwatchCore
import StockwatchServer

struct AlertImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Add many alerts from JSON (as 'alert list --json' prints) or NDJSON; all or nothing.")

    @Argument(help: "The file to read, or - for stdin.") var path: String
    @Option(help: ArgumentHelp("Give every imported alert to this user.", valueName: "name")) var user: String?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let input = try InputFile.read(path)
        let (database, config) = try global.open()
        let count = try AlertService(database: database, config: config).importAlerts(input.data, source: input.source, user: user)
        if global.json { Output.json(["imported": count]) } else if global.verbose { print("imported \(count) alert(s)") }
    }
}
