import ArgumentParser

struct DeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Manage the phones that receive push notifications.",
        subcommands: [DeviceAddCommand.self, DeviceListCommand.self, DeviceRemoveCommand.self])
}
