import Foundation
import Testing

/// Issue 20, item 6: notes, labels and tokens come from API users; printed raw, a note could
/// forge a table row and set the terminal's title and colours.
@Suite struct TableEscapingTests {
    static let note = "\u{1B}]0;pwned\u{07}x\n| 99 | FAKE\r\u{1B}[31mred\u{9B}\u{202E}evil\u{7F}\t."

    /// No byte that drives a terminal or starts a line: C0 except the table's own newlines,
    /// DEL, C1 (U+0080-U+009F) and the bidi overrides.
    static func rawControls(_ text: String) -> [UInt32] {
        text.unicodeScalars.map(\.value).filter { value in
            (value < 0x20 && value != 0x0A) || (0x7F..<0xA0).contains(value) || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
        }
    }

    @Test func tableCellsAreEscapedAndJSONStaysExact() throws {
        let sandbox = try Sandbox()
        let added = try sandbox.run(["alert", "add", "AAPL", "--crosses-above", "200", "--note", Self.note])
        #expect(added.status == 0, "\(added.stderr)")
        // A token is checked less than a note (one word); should a stricter check refuse
        // this one, the label still carries the escapes.
        var token = "tok\u{1B}[2Jx\u{07}"
        if try sandbox.run(["device", "add", "--fcm-token", token, "--label", Self.note]).status != 0 {
            token = "plain-token"
            #expect(try sandbox.run(["device", "add", "--fcm-token", token, "--label", Self.note]).status == 0)
        }

        for command in [["alert", "list"], ["alert", "show", "1"], ["device", "list"]] {
            let result = try sandbox.run(command)
            #expect(result.status == 0, "\(command): \(result.stderr)")
            #expect(Self.rawControls(result.stdout).isEmpty, "\(command): \(result.stdout.debugDescription)")
            // The note stays in its row: no line of its own.
            #expect(!result.stdout.split(separator: "\n").contains { $0.hasPrefix("| 99") }, "\(command): \(result.stdout)")
            #expect(result.stdout.contains(#"\e]0;pwned\u{7}x\n| 99 | FAKE\r\e[31mred\u{9b}\u{202e}evil\u{7f}\t."#), "\(command): \(result.stdout)")
        }
        #expect(try sandbox.run(["alert", "list"]).stdout.split(separator: "\n").count == 2)
        if token != "plain-token" { #expect(try sandbox.run(["device", "list"]).stdout.contains(#"tok\e[2Jx\u{7}"#)) }

        // JSON keeps every character.
        let shown = try #require(try sandbox.run(["alert", "show", "1", "--json"]).json() as? [String: Any])
        #expect(shown["note"] as? String == Self.note)
        let devices = try #require(try sandbox.run(["device", "list", "--json"]).json() as? [[String: Any]])
        #expect(devices.first?["label"] as? String == Self.note)
        #expect(devices.first?["fcm_token"] as? String == token)
    }
}
