import ArgumentParser
import StockwatchCore
import StockwatchModel
import StockwatchServer

/// `--timezone` and `--quiet`, shared by `user add` and `user set`.
struct UserSettingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The user's IANA time zone, e.g. Europe/Warsaw (default UTC).", valueName: "zone")) var timezone: String?
    @Option(help: ArgumentHelp("Quiet hours on the user's clock, e.g. 22:00-07:00 (over midnight allowed), or off.", valueName: "HH:MM-HH:MM|off"))
    var quiet: String?

    var change: UserService.SettingsChange {
        UserService.SettingsChange(timezone: timezone, quietHours: quiet.map { $0 == "off" ? nil : $0 })
    }
}

struct UserSetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Change a user's time zone or quiet hours.")

    @Argument(help: "The user's name.") var name: String
    @OptionGroup var settings: UserSettingOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let change = settings.change
        guard change.timezone != nil || change.quietHours != nil else { throw StockwatchError.usage("give --timezone or --quiet") }
        let (database, _) = try global.open()
        let service = UserService(database: database)
        let user = try service.change(userID: try service.find(name: name).id, change)
        if global.json { Output.json(user) } else if global.verbose { print("\(user.name): \(user.timezone), quiet hours \(user.quietHours ?? "off")") }
    }
}
