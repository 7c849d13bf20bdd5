import ArgumentParser
import StockwatchCore
import StockwatchServer

struct UserAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Create a user and print their API token, once (only its hash is stored).")

    @Argument(help: "Letters, digits, '-', '_', '.' and '@'; at most 64.") var name: String
    @OptionGroup var settings: UserSettingOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, _) = try global.open()
        let created = try UserService(database: database).add(name: name, settings: settings.change)
        if global.json { Output.json(created) } else { print(created.token) }
    }
}
