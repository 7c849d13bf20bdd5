import Foundation
import StockwatchCore
import Testing

/// README and the man page are part of the interface: every command and exit code is there.
@Suite struct DocumentationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    static let commands = [
        "tick", "fetch", "evaluate", "notify", "alert add", "alert list", "alert show", "alert remove", "alert pause", "alert resume", "alert import",
        "user add", "user list", "user remove", "device add", "device list", "device remove", "history", "status", "serve", "demo", "config check",
    ]

    @Test func everyExitCodeIsDocumented() throws {
        let readme = try Self.read("README.md")
        let man = try Self.read("man/stockwatch.1")
        for status in ExitStatus.allCases {
            #expect(readme.contains("| \(status.rawValue) |"), "README lacks exit code \(status.rawValue)")
            #expect(man.contains(".B \(status.rawValue)\n"), "man page lacks exit code \(status.rawValue)")
        }
    }

    @Test func everyCommandIsDocumentedWithHelp() throws {
        let readme = try Self.read("README.md")
        let man = try Self.read("man/stockwatch.1").replacingOccurrences(of: "\\-", with: "-")
        for command in Self.commands {
            #expect(readme.contains("stockwatch \(command)"), "README lacks \(command)")
            #expect(man.contains(command), "man page lacks \(command)")
            let sandbox = try Sandbox()
            let help = try sandbox.run(command.split(separator: " ").map(String.init) + ["--help"])
            #expect(help.status == 0 && help.stdout.contains("USAGE"), "\(command) --help")
        }
    }

    @Test func crontabExampleRunsTickWhichHasItsOwnLock() throws {
        let crontab = try Self.read("crontab.example")
        #expect(crontab.contains("* * * * * stockwatch tick"))
        #expect(crontab.contains("MAILTO"))
        #expect(crontab.contains("STOCKWATCH_DB"))
    }

    @Test func exampleConfigIsValid() throws {
        let path = Self.root.appendingPathComponent("config.example.toml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        _ = try ConfigLoader.parse(text, file: path, environment: [:])
    }
}
