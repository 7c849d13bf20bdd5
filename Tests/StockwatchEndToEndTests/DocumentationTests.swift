import Foundation
import StockwatchCore
import Testing
import StockwatchModel

/// README and the man page are part of the interface: every subcommand the CLI has is in
/// the man page's COMMANDS, and both exit-code tables are the code's, row by row.
@Suite struct DocumentationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The lines of a man page section, from `.SH NAME` to the next `.SH`.
    static func manSection(_ name: String, in man: String) -> [Substring] {
        let lines = man.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: Substring(".SH \(name)")) else { return [] }
        let rest = lines[(start + 1)...]
        return Array(rest.prefix { !$0.hasPrefix(".SH ") })
    }

    /// Every leaf subcommand, from the CLI's own configuration (ArgumentParser's dump of
    /// the command tree), so that a new subcommand cannot be missed here.
    static func subcommands() throws -> [String] {
        let result = try Sandbox().run(["--experimental-dump-help"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        var leaves: [String] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            let subcommands = command["subcommands"] as? [[String: Any]] ?? []
            if subcommands.isEmpty, !path.isEmpty { leaves.append(path.joined(separator: " ")) }
            for sub in subcommands { walk(sub, path + [sub["commandName"] as? String ?? "?"]) }
        }
        walk(try #require(object["command"] as? [String: Any]), [])
        return leaves.filter { $0 != "help" }
    }

    @Test func theExitCodeTablesAreTheCodesRowByRow() throws {
        let expected = Dictionary(uniqueKeysWithValues: ExitStatus.allCases.map { (Int($0.rawValue), $0.meaning) })

        let readme = try Self.read("README.md")
        let table = try #require(readme.components(separatedBy: "\n## Exit codes\n").dropFirst().first?.components(separatedBy: "\n## ").first)
        var readmeRows: [Int: String] = [:]
        for line in table.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let code = Int(cells[0]) else { continue }
            #expect(readmeRows[code] == nil, "README lists exit code \(code) twice")
            readmeRows[code] = cells[1].replacingOccurrences(of: "`", with: "")
        }
        #expect(readmeRows == expected)

        // .TP, .B CODE, then the meaning over one or more lines (a .B word inside it)
        var manRows: [Int: String] = [:]
        var code: Int?
        for line in Self.manSection("EXIT STATUS", in: try Self.read("man/stockwatch.1")) {
            if line == ".TP" { code = nil; continue }
            if code == nil, line.hasPrefix(".B "), let value = Int(line.dropFirst(3)) {
                code = value
                continue
            }
            guard let code else { continue }
            let text = line.hasPrefix(".B ") ? String(line.dropFirst(3)) : String(line)
            manRows[code] = [manRows[code], text].compactMap { $0 }.joined(separator: " ")
        }
        #expect(manRows == expected)
    }

    @Test func everySubcommandIsInTheManPageAndHasHelp() throws {
        let commands = try Self.subcommands()
        #expect(commands.count >= 20, "\(commands)")
        let headings = Self.manSection("COMMANDS", in: try Self.read("man/stockwatch.1"))
            .filter { $0.hasPrefix(".SS ") }
            .map { $0.replacingOccurrences(of: "\\-", with: "-").replacingOccurrences(of: "\"", with: "") }
        for command in commands {
            #expect(headings.contains { $0 == ".SS stockwatch \(command)" || $0.hasPrefix(".SS stockwatch \(command) ") },
                    "the man page's COMMANDS has no heading for \(command)")
            let help = try Sandbox().run(command.split(separator: " ").map(String.init) + ["--help"])
            #expect(help.status == 0 && help.stdout.contains("USAGE"), "\(command) --help")
        }
    }

    @Test func readmeIsAGuideThatPointsToTheReference() throws {
        let readme = try Self.read("README.md")
        #expect(readme.split(separator: "\n", omittingEmptySubsequences: false).count <= 300)
        for target in ["man/stockwatch.1", "docs/api.md", "docs/alerts.md", "docs/configuration.md", "docs/reliability.md", "docs/benchmarks.md", "openapi.yaml"] {
            #expect(readme.contains("](\(target)"), "README does not link \(target)")
            #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(target).path), "\(target) is missing")
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
