import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct TickCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tick",
        abstract: "Run fetch, evaluate and notify in one process: the one line cron needs.",
        discussion: """
            Holds an exclusive lock on DB.tick-lock; when another tick holds it, exits 75 with one line on stderr. \
            Every step runs even if an earlier one failed; the exit status is the first failing step's.
            """)

    @Option(help: ArgumentHelp("Store quotes from a CSV (symbol,price,time) or NDJSON file, or - for stdin, instead of asking providers.", valueName: "path"))
    var from: String?
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let (database, config) = try global.open()
        let service = TickService(
            database: database, config: config, environment: global.environment,
            writeLine: global.json ? NotifyService.standardError : NotifyService.standardOutput, detailedEvaluate: global.json || global.verbose)
        let report = try await service.run(input: try from.map { path throws(StockwatchError) in try InputFile.read(path) })
        if global.json {
            Output.json(report)
        } else if global.verbose, let evaluate = report.evaluate {
            print("fetched \(report.fetch?.quotes.count ?? 0) quotes; evaluated \(evaluate.evaluated) alerts, \(evaluate.notifications.count) notifications")
        }
        if let notify = report.notify { Output.notify(notify, global: global, printJSON: false) }
        // Every step's problems, whichever step decides the exit status.
        var problems: [String] = []
        if let fetch = report.fetch, fetch.exitStatus != .success { problems += fetch.errors.map { "fetch: \($0.message)" } }
        problems += report.errors.map(\.message)
        if let notify = report.notify { problems += Output.problems(notify) }
        try Output.finish(report.exitStatus, problems: problems, json: global.json)
    }
}
