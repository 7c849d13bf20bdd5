import ArgumentParser
import StockwatchCore
import StockwatchServer

struct UserListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List users.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, _) = try global.open(readOnly: true)
        let users = try UserService(database: database).list()
        if global.json { return Output.json(users) }
        Output.table(
            ["ID", "NAME", "ALERTS", "DEVICES", "TIMEZONE", "QUIET", "CREATED"],
            users.map { ["\($0.id)", $0.name, "\($0.alerts)", "\($0.devices)", $0.timezone, $0.quietHours ?? "-", Output.time($0.createdAt)] },
            rightAligned: [0, 2, 3])
    }
}
