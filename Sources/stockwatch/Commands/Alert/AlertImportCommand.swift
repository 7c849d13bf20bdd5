import ArgumentParser
import Foundation
import StockwatchCore

struct AlertImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Add many alerts from JSON (as 'alert list --json' prints) or NDJSON; all or nothing.")

    @Argument(help: "The file to read, or - for stdin.") var path: String
    @Option(help: ArgumentHelp("Give every imported alert to this user.", valueName: "name")) var user: String?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw StockwatchError.invalidInput(source: path, position: nil, reason: "cannot read file")
            }
            data = contents
        }
        let (database, config) = try global.open()
        let count = try AlertService(database: database, config: config).importAlerts(data, source: path == "-" ? "stdin" : path, user: user)
        if global.json { Output.json(["imported": count]) } else if global.verbose { print("imported \(count) alert(s)") }
    }
}
