import ArgumentParser

struct DBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "The database itself: apply migrations, show the backend, schema and sizes, copy a store to another backend.",
        subcommands: [DBMigrateCommand.self, DBStatusCommand.self, DBCopyCommand.self])
}
