import Foundation
import StockwatchModel
import StockwatchStore

/// Reads secrets and refuses files that others can read, as ssh does with private keys.
public enum SecretReader {
    /// Refuses a file readable or writable by group or others, or one that others could
    /// swap (see `PathSafety`).
    public static func checkPrivate(_ path: String) throws(StockwatchError) {
        try PathSafety.check(path)
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw .config(file: path, line: nil, key: nil, reason: "cannot read secret file: \(String(cString: strerror(errno)))")
        }
        let mode = Int(info.st_mode) & 0o777
        if mode & 0o077 != 0 { throw .insecureFile(path: path, mode: mode) }
    }

    /// The secret's value, trimmed of the trailing newline editors add.
    public static func read(_ source: SecretSource, environment: [String: String]) throws(StockwatchError) -> String {
        switch source {
        case let .file(path):
            try checkPrivate(path)
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw .config(file: path, line: nil, key: nil, reason: "cannot read secret file")
            }
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if value.isEmpty { throw .config(file: path, line: nil, key: nil, reason: "secret file is empty") }
            return value
        case let .environment(name):
            guard let value = environment[name], !value.isEmpty else {
                throw .config(file: "environment", line: nil, key: name, reason: "variable is empty or unset")
            }
            return value
        case let .inline(configFile, value):
            try checkPrivate(configFile)
            return value
        }
    }
}
