import ArgumentParser

struct AlertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alert",
        abstract: "Add, list, change and remove alert rules.",
        subcommands: [
            AlertAddCommand.self, AlertListCommand.self, AlertShowCommand.self, AlertRemoveCommand.self,
            AlertPauseCommand.self, AlertResumeCommand.self, AlertSnoozeCommand.self, AlertUnsnoozeCommand.self, AlertImportCommand.self,
        ]
    )
}
