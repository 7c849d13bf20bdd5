import ArgumentParser
import StockwatchCore

struct DeviceAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Register a device's FCM token (a known token is refreshed); prints its id.")

    @Option(help: ArgumentHelp("The owner (default: the user named default).", valueName: "name")) var user: String?
    @Option(help: ArgumentHelp("The app's Firebase Cloud Messaging registration token.", valueName: "token")) var fcmToken: String
    @Option(help: ArgumentHelp("A name to recognise the device by.", valueName: "text")) var label: String?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, _) = try global.open()
        let device = try DeviceService(database: database).add(user: user, fcmToken: fcmToken, label: label)
        if global.json { Output.json(device) } else { print(device.id) }
    }
}
