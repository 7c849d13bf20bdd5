import Foundation

/// The one error type of stockwatch. Every case carries what the user needs to
/// find the culprit; ExitStatus.swift in the core maps each case to an exit code.
public enum StockwatchError: Error, Equatable, Sendable {
    /// A flag or value on the command line (or in an API request) is malformed.
    case invalidValue(option: String, value: String, reason: String)
    /// The command as a whole does not make sense (two conditions, none, ...).
    case usage(String)
    /// An id or name that does not exist.
    case notFound(kind: String, id: String)
    /// Something that must be unique already exists.
    case alreadyExists(kind: String, id: String)
    /// A per-user limit (`[serve] max_alerts_per_user`, ...) would be exceeded.
    case limitReached(kind: String, limit: Int, key: String)
    /// Input data (an import file, a quote feed) is unreadable or malformed.
    case invalidInput(source: String, position: String?, reason: String)
    /// The configuration is wrong: a syntax error, an unknown key, a bad value.
    case config(file: String, line: Int?, key: String?, reason: String)
    /// A secret file (or a config file holding an inline secret) that others can read.
    case insecureFile(path: String, mode: Int)
    /// A database, config or secret reachable through a folder other users may write.
    case insecureFolder(path: String, folder: String, reason: String)
    /// A service or resource stockwatch needs is not there.
    case unavailable(String)
    /// Retry later: the database is busy, another run holds the lock, a partial failure.
    case temporary(String)
    /// A bug or an unexpected state.
    case `internal`(String)

    /// A stable machine-readable code for `--json` errors and the HTTP API.
    public var code: String {
        switch self {
        case .invalidValue: "invalid_value"
        case .usage: "usage"
        case .notFound: "not_found"
        case .alreadyExists: "already_exists"
        case .limitReached: "limit_reached"
        case .invalidInput: "invalid_input"
        case .config: "config"
        case .insecureFile, .insecureFolder: "insecure_file"
        case .unavailable: "unavailable"
        case .temporary: "temporary"
        case .internal: "internal"
        }
    }
}

extension StockwatchError {
    /// The same error with a field named as the caller knows it: the core names JSON
    /// fields, the CLI renames them to its flags ("window_seconds" to "--within").
    public func renamingField(_ names: [String: String]) -> StockwatchError {
        guard case let .invalidValue(field, value, reason) = self, let name = names[field] else { return self }
        return .invalidValue(option: name, value: value, reason: reason)
    }
}

extension StockwatchError: LocalizedError {
    public var errorDescription: String? { message }

    /// One human line naming the culprit.
    public var message: String {
        switch self {
        case let .invalidValue(option, value, reason):
            "invalid value '\(value.truncatedForMessage)' for \(option): \(reason)"
        case let .usage(text):
            text
        case let .notFound(kind, id):
            "no \(kind) '\(id.truncatedForMessage)'"
        case let .alreadyExists(kind, id):
            "\(kind) '\(id.truncatedForMessage)' already exists"
        case let .limitReached(kind, limit, key):
            "limit of \(limit) \(kind)s per user reached (\(key)); remove some first"
        case let .invalidInput(source, position, reason):
            [source, position].compactMap { $0 }.joined(separator: ": ") + ": " + reason
        case let .config(file, line, key, reason):
            [file + (line.map { ":\($0)" } ?? ""), key.map { "key '\($0)'" }, reason]
                .compactMap { $0 }.joined(separator: ": ")
        case let .insecureFile(path, mode):
            "\(path) is readable by group or others (mode \(String(mode, radix: 8))); run 'chmod 600 \(path)'"
        case let .insecureFolder(path, folder, reason):
            "\(path) is reachable through \(folder), \(reason)"
        case let .unavailable(text), let .temporary(text):
            text
        case let .internal(text):
            "internal error: \(text)"
        }
    }
}

/// Documented exit codes (sysexits.h). README and the man page list this table;
/// DocumentationTests compares both with `allCases` and `meaning`, row by row.
extension String {
    /// An error line as the terminal and the log get it: control characters escaped (a
    /// newline, CR or escape sequence from an argument or path can neither split the line
    /// nor drive the terminal), and at most 1,000 characters.
    public var printableLine: String {
        var out = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value):
                out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out.count > 1000 ? String(out.prefix(997)) + "..." : out
    }

    /// Keeps error lines one line and readable even when the culprit is huge or has newlines.
    public var truncatedForMessage: String {
        let flat = self.replacingOccurrences(of: "\n", with: "\\n")
        return flat.count > 80 ? String(flat.prefix(77)) + "..." : flat
    }
}
