import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

struct AlertSnoozeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snooze", abstract: "Keep judging an alert but notify nothing until a time; crossings meanwhile are forgotten.")

    @Argument(help: "The alert's id.") var id: Int64
    @Argument(help: ArgumentHelp("For this long (1h, 30m, 1d) or until this date (2026-12-31T18:00:00Z); at most a year.", valueName: "duration|date"))
    var until: String
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let now = Date()
        let end = try ValueParser.expiry(until, option: "snooze", now: now)
        let (database, config) = try global.open()
        let alert = try AlertService(database: database, config: config).snooze(id: id, until: end, option: "snooze", typed: until, now: now)
        if global.json { Output.json(alert) } else if global.verbose { print("alert \(id) is snoozed until \(Output.time(alert.snoozedUntil))") }
    }
}

struct AlertUnsnoozeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unsnooze", abstract: "End an alert's snooze: it notifies again from the next quote.")

    @Argument(help: "The alert's id.") var id: Int64
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (database, config) = try global.open()
        let alert = try AlertService(database: database, config: config).snooze(id: id, until: nil)
        if global.json { Output.json(alert) } else if global.verbose { print("alert \(id) is not snoozed") }
    }
}
