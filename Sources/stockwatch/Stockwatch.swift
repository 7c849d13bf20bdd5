import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

@main
struct Stockwatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stockwatch",
        abstract: "Watch stock and currency prices and notify people when their alert rules match.",
        discussion: "Exit codes, files and the JSON output are described in stockwatch(1).",
        version: StockwatchCore.version,
        subcommands: [
            TickCommand.self, FetchCommand.self, EvaluateCommand.self, NotifyCommand.self, AlertCommand.self, UserCommand.self, DeviceCommand.self, HistoryCommand.self, StatusCommand.self, ServeCommand.self, DemoCommand.self, ConfigCommand.self, DBCommand.self,
        ]
    )

    /// Parses, runs, and turns any failure into one stderr line and a documented exit code.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                // notify's sends run on NIO's event loops by their own executor preference
                // (EventLoopTaskExecutor); NIO's takeover of the global executor finds no
                // hook to set in a binary with the Swift runtime linked in.
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            Foundation.exit(Failure.report(error, json: arguments.contains("--json")))
        }
    }
}

/// The one place where errors become stderr text and exit codes.
enum Failure {
    static func report(_ error: any Error, json: Bool) -> Int32 {
        switch error {
        case let error as StockwatchError:
            return emit(code: error.code, message: error.message, status: error.exitStatus.rawValue, json: json)
        case let exit as ExitCode:
            return exit.rawValue
        default:
            let status = Stockwatch.exitCode(for: error)
            if status == .success {
                Stockwatch.exit(withError: error)  // --help, --version: ArgumentParser prints them
            }
            let message = Stockwatch.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            return emit(code: "usage", message: message + " (see --help)", status: status.rawValue, json: json)
        }
    }

    private static func emit(code: String, message: String, status: Int32, json: Bool) -> Int32 {
        var line = Output.errorText(message)
        // The JSON message is the text line's message, escaped and capped the same way.
        if json { line += JSONOutput.errorDocument(code: code, message: message.printableLine, exitStatus: status) + "\n" }
        FileHandle.standardError.write(utf8: line)
        return status
    }
}
