import ArgumentParser

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage users and their API tokens.",
        subcommands: [UserAddCommand.self, UserListCommand.self, UserSetCommand.self, UserRemoveCommand.self])
}
