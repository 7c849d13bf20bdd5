import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show providers, stale symbols, deliveries and the FCM token; exit 1 when something needs attention.",
        discussion: "For monitoring: exit 0 when healthy, 1 when a problem is listed (a failing provider, a stale symbol, overdue or recently dead deliveries).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, config) = try global.open(readOnly: true)
        let report = try StatusService(database: database, config: config).run()
        if global.json {
            Output.json(report)
        } else {
            Output.status(report)
        }
        if report.exitStatus != .success { throw ExitCode(report.exitStatus.rawValue) }
    }
}

extension Output {
    static func status(_ report: StatusReport) {
        print(report.healthy ? "healthy" : "needs attention:")
        for problem in report.problems { print("  - \(cell(problem))") }  // may quote a provider's error
        print("")
        if !report.providers.isEmpty {
            table(
                ["PROVIDER", "LAST SUCCESS", "LAST ERROR", "FAILURES", "BLOCKED UNTIL"],
                report.providers.map {
                    [$0.name, time($0.lastSuccessAt), time($0.lastErrorAt), String($0.consecutiveFailures),
                     $0.blockedUntil.map { until in time(until) } ?? "-"]
                }, rightAligned: [3])
            print("")
        }
        let d = report.deliveries
        print("deliveries: \(DeliveryStatus.allCases.map { "\($0.rawValue) \(d.count($0))" }.joined(separator: ", ")); overdue \(d.overdue)")
        for token in report.fcm {
            print("fcm channel \(token.channel): \(token.account ?? "?"), access token " + (token.tokenExpiresAt.map { "valid until \(time($0))" } ?? "not cached"))
        }
        print("database: \(report.database.path), \(report.database.bytes / 1024) KiB")
    }
}
