import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Send every due delivery through its channel (fcm, webhook, exec, stdout) and schedule retries.",
        discussion: """
            Quiet unless -v or --json; the stdout channel prints one line per notification (on stderr under --json). \
            Exit 0 when everything due was delivered, 75 when some deliveries wait for a retry or failed, 78 when a channel's config is broken. \
            Safe to run concurrently: each delivery is claimed by one process. \
            With --follow it keeps running (under systemd, not cron): after each pass it sleeps until new deliveries are \
            committed (PostgreSQL wakes it at once; on SQLite it polls), a retry falls due, or the poll interval ends; \
            SIGTERM or SIGINT ends it after the pass in flight, with exit 0.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Keep running: deliver what becomes due until SIGTERM or SIGINT.")
    var follow = false

    @Option(name: .customLong("poll"), help: ArgumentHelp(
        "With --follow: the longest sleep between passes (default 1s on SQLite, 30s on PostgreSQL, which wakes workers at once).",
        valueName: "duration"))
    var poll: String?

    func run() async throws {
        let pollSeconds = try poll.map { text throws(StockwatchError) in
            guard follow else { throw StockwatchError.usage("--poll needs --follow") }
            return try ValueParser.duration(text, option: "--poll")
        }
        let (database, config) = try global.open()
        let service = NotifyService(
            database: database, config: config, environment: global.environment,
            writeLine: global.json ? NotifyService.standardError : NotifyService.standardOutput)
        if follow {
            let global = global
            try await NotifyFollower(service: service, database: database, poll: pollSeconds.map { .seconds($0) }).run { report in
                // One line per pass under --json (NDJSON), problems as lines on stderr, each
                // pass's output flushed at once (a pipe to journald buffers otherwise).
                Output.notify(report, global: global)
                for problem in Output.problems(report) { Output.errorLine(problem) }
                fflush(nil)
            }
            return
        }
        let report = try await service.run()
        Output.notify(report, global: global)
        try Output.finish(report.exitStatus, problems: Output.problems(report), json: global.json)
    }
}
