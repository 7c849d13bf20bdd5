import ArgumentParser
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct AlertRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove alerts (all or nothing: one unknown id removes none).")

    @Argument(help: "The alerts' ids.") var ids: [Int64]
    @Flag(help: "Do not ask; needed when stdin is not a terminal.") var yes = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if ids.isEmpty { throw ValidationError("Missing expected argument '<ids> ...'") }
    }

    func run() throws {
        let (database, config) = try global.open()
        let service = AlertService(database: database, config: config)
        for id in ids { _ = try service.show(id: id) }  // name an unknown id before asking
        try Output.confirm("Remove \(ids.count) alert(s)", yes: yes)
        try service.remove(ids: ids)
        if global.json { Output.json(["removed": ids]) } else if global.verbose { print("removed alert(s) \(ids.map(String.init).joined(separator: ", "))") }
    }
}
