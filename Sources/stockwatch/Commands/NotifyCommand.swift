import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchServer

struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Send every due delivery through its channel (fcm, webhook, exec, stdout) and schedule retries.",
        discussion: """
            Quiet unless -v or --json; the stdout channel prints one line per notification (on stderr under --json). \
            Exit 0 when everything due was delivered, 75 when some deliveries wait for a retry or failed, 78 when a channel's config is broken. \
            Safe to run concurrently: each delivery is claimed by one process.
            """)

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let (database, config) = try global.open()
        let service = NotifyService(
            database: database, config: config, environment: global.environment,
            writeLine: global.json ? NotifyService.standardError : NotifyService.standardOutput)
        let report = try await service.run()
        Output.notify(report, global: global)
        try Output.finish(report.exitStatus, problems: Output.problems(report), json: global.json)
    }
}
