import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchServer

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Judge active alerts against new quotes; write each firing as a notification with pending deliveries.",
        discussion: "Quiet unless -v or --json. Safe to run concurrently: each (alert, quote) is notified at most once.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, config) = try global.open()
        let report = try EvaluateService(database: database, config: config).run(detailed: global.json || global.verbose)
        if global.json { return Output.json(report) }
        guard global.verbose else { return }
        for notification in report.notifications {
            print("#\(notification.id) alert \(notification.alertId) \(notification.user): \(notification.message)")
        }
        for id in report.insufficientHistory { print("alert \(id): insufficient history") }
        for id in report.expired { print("alert \(id): expired") }
        print("evaluated \(report.evaluated) alerts, \(report.notifications.count) notifications")
    }
}
