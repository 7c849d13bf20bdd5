import ArgumentParser
import StockwatchCore
import StockwatchServer

struct DeviceListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List devices.")

    @Option(help: ArgumentHelp("Only this user's devices.", valueName: "name")) var user: String?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, _) = try global.open(readOnly: true)
        let devices = try DeviceService(database: database).list(user: user)
        if global.json { return Output.json(devices) }
        Output.table(
            ["ID", "USER", "LABEL", "ACTIVE", "TOKEN", "UPDATED"],
            devices.map { device in
                let token = device.fcmToken.count > 16 ? device.fcmToken.prefix(12) + "..." : Substring(device.fcmToken)
                let active = device.active ? "yes" : "no" + (device.deactivatedReason.map { " (\($0))" } ?? "")
                return ["\(device.id)", device.user, device.label ?? "", active, String(token), Output.time(device.updatedAt)]
            },
            rightAligned: [0])
    }
}
