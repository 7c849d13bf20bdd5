import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchServer

/// Rendering for humans (aligned tables) and scripts (one JSON document).
enum Output {
    static func json(_ value: some Encodable) {
        print(JSONOutput.encode(value))
    }

    /// A JSON array written a page at a time, byte for byte what `json` prints for the
    /// whole array (compact, so the pages' arrays join with commas).
    final class JSONArrayWriter {
        private let encoder = JSONOutput.encoder()
        private var opened = false
        private var json = JSONText()

        func write(_ page: [some Encodable]) throws(StockwatchError) {
            guard !page.isEmpty else { return }
            var bytes: Data
            do { bytes = try encoder.encode(page) } catch { throw .internal("cannot encode the output: \(error)") }
            // "[a,b]" without its brackets, after "[" or ",".
            bytes.removeLast()
            bytes[bytes.startIndex] = UInt8(ascii: opened ? "," : "[")
            opened = true
            FileHandle.standardOutput.write(bytes)
        }

        /// Alerts by hand (`AlertJSON.write(to:)`): a fifth of `JSONEncoder`'s time for
        /// `alert list --json` of 100,000 alerts, and the same bytes.
        func write(_ page: [AlertJSON]) {
            guard !page.isEmpty else { return }
            json.removeAll()
            for alert in page {
                json.raw(opened ? "," : "[")
                opened = true
                alert.write(to: &json)
            }
            json.bytes.withUnsafeBufferPointer { FileHandle.standardOutput.write(Data(buffer: $0)) }
        }

        func finish() {
            FileHandle.standardOutput.write(utf8: opened ? "]\n" : "[]\n")
        }
    }

    /// Every error line on stderr: one line, control characters escaped, length capped.
    static func errorText(_ message: String) -> String { "stockwatch: error: \(message.printableLine)\n" }

    static func errorLine(_ message: String) { FileHandle.standardError.write(utf8: errorText(message)) }

    /// A rule that needs daily history its symbols lack: one line on stderr (exit 0), and
    /// with `--json` also `{"warning":{"code":"no_history","symbols":[...],"message":...}}`.
    static func noHistoryWarning(symbols: [String], json: Bool) {
        let message = "no daily history for \(symbols.joined(separator: ", ")) yet: the alert judges nothing until "
            + "`stockwatch fetch --history \(symbols.joined(separator: " "))` (or tick, with [providers.stooq]) stores some"
        FileHandle.standardError.write(utf8: "stockwatch: warning: \(message.printableLine)\n")
        guard json else { return }
        struct Warning: Encodable { let code: String; let symbols: [String]; let message: String }
        FileHandle.standardError.write(utf8: JSONOutput.encode(["warning": Warning(code: "no_history", symbols: symbols, message: message)]) + "\n")
    }

    /// Columns padded to their widest cell; a column named in `rightAligned` is right-aligned.
    /// Cells are escaped (see `cell`): notes, labels and tokens come from API users.
    static func table(_ headers: [String], _ rows: [[String]], rightAligned: Set<Int> = []) {
        let headers = headers.map(cell)
        let rows = rows.map { $0.map(cell) }
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return rightAligned.contains(index) ? pad + cell : (index == cells.count - 1 ? cell : cell + pad)
            }.joined(separator: "  ")
        }
        var text = line(headers) + "\n"
        for row in rows { text += line(row) + "\n" }
        print(text, terminator: "")  // through print's buffer, so that it keeps its place among printed lines
    }

    /// A table cell as visible text: C0 and C1 controls, DEL, line and paragraph
    /// separators and bidi overrides become escapes (`\n`, `\e`, `\u{202e}`), so a cell can
    /// neither forge a row nor drive the terminal (title, colours) nor reorder what follows.
    static func cell(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x1B: out += "\\e"
            case 0x00..<0x20, 0x7F..<0xA0, 0x2028...0x2029, 0x202A...0x202E, 0x2066...0x2069:
                out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return date.formatted(tableTime)
    }

    /// "2026-11-25 09:30:00Z". A format style, not ISO8601DateFormatter: on Linux that
    /// builds an ICU formatter per call, a third of a millisecond for each table row.
    private static let tableTime = Date.ISO8601FormatStyle(dateSeparator: .dash, dateTimeSeparator: .space, timeSeparator: .colon,
                                                           timeZone: TimeZone(identifier: "UTC")!)

    /// Confirmation for destructive commands: `--yes`, or a "y" typed at a terminal.
    static func confirm(_ question: String, yes: Bool) throws(StockwatchError) {
        if yes { return }
        guard isatty(STDIN_FILENO) == 1 else {
            throw .usage("\(question.lowercased()) needs --yes when stdin is not a terminal")
        }
        FileHandle.standardError.write(utf8: "\(question)? [y/N] ")
        guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
            throw .usage("not confirmed; nothing was removed")
        }
    }
}

extension Output {
    /// notify's report, shared with tick: the JSON document, or with -v a line per delivery;
    /// problems go to stderr either way, since cron mails them.
    static func notify(_ report: NotifyReport, global: GlobalOptions, printJSON: Bool = true) {
        if global.json {
            if printJSON { Output.json(report) }
        } else if global.verbose {
            for d in report.deliveries {
                // The error is a receiver's or provider's text: escaped like a table cell.
                print("delivery \(d.id) (notification \(d.notificationId), \(d.channel)\(d.target.map { " \($0)" } ?? "")): \(d.status.rawValue)\(d.error.map { ": \(cell($0))" } ?? "")")
            }
        }
    }

    /// What went wrong in a notify run, one line each: broken channels, then the
    /// deliveries not sent (a storm of failures is summarised: cron mails all of it).
    static func problems(_ report: NotifyReport) -> [String] {
        var problems = report.configErrors.map(\.message)
        let unsent = report.deliveries.filter { $0.status != .sent }
        problems += unsent.prefix(20).map {
            "delivery \($0.id) of notification \($0.notificationId) via \($0.channel): \($0.status.rawValue) after attempt \($0.attempts): \($0.error ?? "unknown error")"
        }
        if unsent.count > 20 { problems.append("... and \(unsent.count - 20) more deliveries not sent (see 'stockwatch status')") }
        return problems
    }

    /// The one rule for a command that ends with a status other than 0 after doing its
    /// work (fetch, notify, tick): every problem is a line on stderr, then under --json one
    /// JSON error object (the first problem, and the exit status), as for any error.
    static func finish(_ status: ExitStatus, problems: [String], json: Bool) throws {
        guard status != .success else { return }
        let lines = problems.isEmpty ? [status.meaning] : problems
        for line in lines { errorLine(line) }
        if json {
            let document = JSONOutput.errorDocument(code: status.code, message: lines[0].printableLine, exitStatus: status.rawValue)
            FileHandle.standardError.write(utf8: document + "\n")
        }
        throw ExitCode(status.rawValue)
    }
}
