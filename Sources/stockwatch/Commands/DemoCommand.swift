import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchServer

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show the whole pipeline offline: a temporary database, a few alerts, a bundled price series, notifications on stdout.",
        discussion: "Touches no database or config of yours; the temporary database is kept so that other commands can be tried on it.")

    func run() async throws {
        _ = try await DemoService(say: { print($0, terminator: "") }).run()
    }
}
