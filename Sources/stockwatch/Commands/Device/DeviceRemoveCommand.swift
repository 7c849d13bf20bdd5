import ArgumentParser
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct DeviceRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a device.")

    @Argument(help: "The device's id.") var id: Int64
    @Flag(help: "Do not ask; needed when stdin is not a terminal.") var yes = false
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, _) = try global.open()
        let service = DeviceService(database: database)
        guard try service.list(user: nil).contains(where: { $0.id == id }) else {
            throw StockwatchError.notFound(kind: "device", id: String(id))
        }
        try Output.confirm("Remove device \(id)", yes: yes)
        try service.remove(id: id)
        if global.json { Output.json(["removed": [id]]) } else if global.verbose { print("removed device \(id)") }
    }
}
