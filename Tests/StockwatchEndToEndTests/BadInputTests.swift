import Foundation
import Testing

/// Every rejected command: a one-line error naming the culprit, its documented exit code,
/// and not one row changed.
@Suite struct BadInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var arguments: [String]
        var status: Int32
        var culprit: String
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let cases: [Case] = [
        Case(arguments: ["alert", "add", "AA PL", "--above", "1"], status: 64, culprit: "'AA PL'"),
        Case(arguments: ["alert", "add", "EUR/XYZ", "--above", "1"], status: 64, culprit: "XYZ"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "1", "--below", "2"], status: 64, culprit: "--above and --below"),
        Case(arguments: ["alert", "add", "AAPL"], status: 64, culprit: "no condition"),
        // A negative value is the option's value, refused with why, not "Missing value".
        Case(arguments: ["alert", "add", "AAPL", "--above", "-5"], status: 64, culprit: "'-5' for --above: must not be negative"),
        Case(arguments: ["alert", "add", "AAPL", "--rise", "-5", "--within", "1h"], status: 64, culprit: "'-5' for --rise"),
        Case(arguments: ["alert", "add", "AAPL", "--above=-5"], status: 64, culprit: "negative"),
        Case(arguments: ["alert", "add", "AAPL", "--below", "abc"], status: 64, culprit: "'abc'"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "NaN"], status: 64, culprit: "'NaN'"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "0"], status: 64, culprit: "greater than 0"),
        Case(arguments: ["alert", "add", "AAPL", "--rise", "0", "--within", "1h"], status: 64, culprit: "--rise"),
        Case(arguments: ["alert", "add", "AAPL", "--rise", "0%", "--within", "1h"], status: 64, culprit: "'0%'"),
        Case(arguments: ["alert", "add", "AAPL", "--rise", "5", "--within", "5x"], status: 64, culprit: "'5x' for --within"),
        Case(arguments: ["alert", "add", "AAPL", "--fall", "5"], status: 64, culprit: "--within"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "1", "--cooldown", "soon"], status: 64, culprit: "--cooldown"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "1", "--expires", "2001-01-01"], status: 64, culprit: "--expires"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "1", "--notify", "pager"], status: 64, culprit: "'pager' for --notify"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "1", "--trigger", "always"], status: 64, culprit: "--trigger"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "1", "--trigger", "every", "--rearm-margin", "1"], status: 64, culprit: "--rearm-margin"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "1", "--user", "mallory"], status: 65, culprit: "'mallory'"),
        Case(arguments: ["alert", "add", "AAPL", "--above", "1", "--frobnicate"], status: 64, culprit: "--frobnicate"),
        Case(arguments: ["alert", "add", String(repeating: "X", count: 5000), "--above", "1"], status: 64, culprit: "SYMBOL"),
        Case(arguments: ["alert", "show", "42"], status: 65, culprit: "'42'"),
        Case(arguments: ["alert", "show", "forty-two"], status: 64, culprit: "forty-two"),
        Case(arguments: ["alert", "remove", "1", "42", "--yes"], status: 65, culprit: "'42'"),
        Case(arguments: ["alert", "remove", "1"], status: 64, culprit: "--yes"),
        Case(arguments: ["alert", "pause", "42"], status: 65, culprit: "'42'"),
        Case(arguments: ["alert", "resume", "1"], status: 0, culprit: ""),
        Case(arguments: ["alert", "list", "--state", "sleeping"], status: 64, culprit: "sleeping"),
        Case(arguments: ["alert", "list", "--user", "nobody"], status: 65, culprit: "'nobody'"),
        Case(arguments: ["user", "add", "bad name"], status: 64, culprit: "'bad name'"),
        Case(arguments: ["user", "add", "alice"], status: 65, culprit: "already exists"),
        Case(arguments: ["user", "remove", "alice"], status: 64, culprit: "--yes"),
        Case(arguments: ["user", "remove", "nobody", "--yes"], status: 65, culprit: "'nobody'"),
        Case(arguments: ["device", "add", "--fcm-token", ""], status: 64, culprit: "--fcm-token"),
        Case(arguments: ["device", "add", "--fcm-token", "t", "--user", "nobody"], status: 65, culprit: "'nobody'"),
        Case(arguments: ["device", "remove", "99", "--yes"], status: 65, culprit: "'99'"),
        Case(arguments: ["history", "--since", "yesterday"], status: 64, culprit: "--since"),
        Case(arguments: ["history", "--limit", "0"], status: 64, culprit: "--limit"),
        Case(arguments: ["history", "--symbol", "!!"], status: 64, culprit: "'!!'"),
        Case(arguments: ["frobnicate"], status: 64, culprit: "frobnicate"),
        // Control characters from arguments are escaped: one line, no terminal escapes.
        Case(arguments: ["user", "remove", "esc\u{1b}[31mred", "--yes"], status: 65, culprit: "esc\\u{1b}[31mred"),
        Case(arguments: ["alert", "import", "a\nb"], status: 65, culprit: "a\\nb"),
        Case(arguments: ["alert", "pause", "cr\rhere"], status: 64, culprit: "cr\\rhere"),
        Case(arguments: ["serve", "--listen", "[::1"], status: 64, culprit: "'[::1'"),
        Case(arguments: ["serve", "--listen", "[zz]:80"], status: 64, culprit: "'[zz]:80'"),
        // An empty path (an unset shell variable) is refused, not read as "the default".
        Case(arguments: ["alert", "list", "--config", ""], status: 64, culprit: "--config"),
        Case(arguments: ["alert", "list", "--db", ""], status: 64, culprit: "--db"),
    ]

    @Test(arguments: cases)
    func rejectedWithoutChange(_ testCase: Case) throws {
        let sandbox = try Sandbox()
        try sandbox.run(["user", "add", "alice"])
        try sandbox.run(["alert", "add", "AAPL", "--above", "100", "--user", "alice"])
        let before = try sandbox.snapshot()

        let result = try sandbox.run(testCase.arguments)
        #expect(result.status == testCase.status, "stderr: \(result.stderr)")
        #expect(try sandbox.snapshot() == before)
        guard testCase.status != 0 else { return }
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("stockwatch: error: "))
        #expect(result.stderr.filter { $0 == "\n" }.count == 1, "one line: \(result.stderr)")
        #expect(!result.stderr.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "control characters: \(result.stderr)")
        #expect(result.stderr.contains(testCase.culprit), "\(result.stderr) should name \(testCase.culprit)")
        #expect(result.stderr.count < 400)

        let json = try sandbox.run(testCase.arguments + ["--json"])
        let lines = json.stderr.split(separator: "\n")
        let document = try #require(lines.count == 2 ? try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any] : nil)
        let error = try #require(document["error"] as? [String: Any])
        #expect(error["code"] is String)
        #expect((error["message"] as? String)?.isEmpty == false)
        #expect(error["exit_status"] as? Int == Int(testCase.status))
    }

    @Test func aOneCharacterDatabasePathIsCreatedNotACrash() throws {
        let sandbox = try Sandbox()
        let result = try sandbox.run(["alert", "list", "--db", "x"], in: sandbox.folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: sandbox.folder + "/x"))
    }

    @Test func aNulByteInTheConfigIsASyntaxErrorNotTheEndOfTheFile() throws {
        let sandbox = try Sandbox()
        let config = sandbox.write("c.toml", "# comment \u{0} hidden\n[bogus]\nx = 1\n")
        let result = try sandbox.run(["config", "check", "--config", config])
        #expect(result.status == 78)
        #expect(result.stderr.hasPrefix("stockwatch: error: \(config):1: syntax error: a NUL byte"), "\(result.stderr)")
        let listen = sandbox.write("l.toml", "[serve]\nlisten = \"[::1\"\n")
        let bad = try sandbox.run(["config", "check", "--config", listen])
        #expect(bad.status == 78)
        #expect(bad.stderr.contains("listen"), "\(bad.stderr)")
    }
}
