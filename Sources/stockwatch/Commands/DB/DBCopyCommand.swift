import ArgumentParser
import StockwatchCore
import StockwatchModel

struct DBCopyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a whole store to an empty one: SQLite to PostgreSQL, or back.",
        discussion: """
            Ids and id counters are kept, so a notification id phones have seen keeps meaning the same notification. \
            All of it is one transaction on the target, which must be empty (a PostgreSQL target migrated with 'db migrate' first); \
            each table's rows are counted on both sides. Stop cron and serve while it runs: what they write meanwhile is not copied.
            """)

    @Option(name: .long, help: ArgumentHelp("The store to copy: an SQLite file or a PostgreSQL URL (without a password).", valueName: "path-or-url"))
    var from: String

    @Option(name: .long, help: ArgumentHelp("The empty store to fill: an SQLite file (created) or a PostgreSQL URL.", valueName: "path-or-url"))
    var to: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let config = try global.loadConfig()
        let resolve = { (value: String) throws(StockwatchError) in
            try config.database.location(explicit: value, environment: global.environment, configFile: config.file)
        }
        let report = try DatabaseAdmin.copy(from: try resolve(from), to: try resolve(to))
        if global.json {
            Output.json(report)
            return
        }
        print("copied \(Output.cell(report.from)) to \(Output.cell(report.to))")
        Output.table(["TABLE", "ROWS", "LAST ID"], report.tables.map { [$0.name, String($0.rows), $0.lastID.map(String.init) ?? "-"] }, rightAligned: [1, 2])
    }
}
