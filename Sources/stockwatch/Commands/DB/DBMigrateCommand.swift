import ArgumentParser
import StockwatchCore
import StockwatchModel

struct DBMigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the schema migrations not applied yet (PostgreSQL needs this after an upgrade; SQLite files migrate on open).",
        discussion: "Safe to run again and from several machines at once: migrations are applied in one transaction, one migrator at a time.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let report = try await DatabaseAdmin.migrate(try global.location())
        if global.json { Output.json(report) } else { Output.database(report) }
    }
}
