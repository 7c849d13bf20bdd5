import ArgumentParser
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct UserRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a user with their alerts and devices.")

    @Argument(help: "The user's name.") var name: String
    @Flag(help: "Do not ask; needed when stdin is not a terminal.") var yes = false
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, _) = try global.open()
        let service = UserService(database: database)
        guard let user = try service.list().first(where: { $0.name == name }) else {
            throw StockwatchError.notFound(kind: "user", id: name)
        }
        try Output.confirm("Remove user \(name) with \(user.alerts) alert(s) and \(user.devices) device(s)", yes: yes)
        try service.remove(name: name)
        if global.json { Output.json(["removed": [name]]) } else if global.verbose { print("removed user \(name)") }
    }
}
