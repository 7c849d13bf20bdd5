import Foundation
import StockwatchModel

/// A PostgreSQL database as libpq names it: `postgres://[user@][host][:port][/dbname][?sslmode=...&sslrootcert=...]`
/// (or `postgresql://`). Unset parts fall back to libpq's variables (`PGHOST`, `PGPORT`,
/// `PGUSER`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`), then to libpq's defaults. A host
/// beginning with `/` is the folder of a Unix socket.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var sslMode: SSLMode
    public var sslRootCert: String?
    /// Only from a config file's `url` (0600) or never: `--db` and STOCKWATCH_DB refuse one.
    public var passwordInURL: String?
    /// The password to send: the URL's, else what `DatabaseSettings` found (PGPASSWORD,
    /// `[database] password_file`, ~/.pgpass). Never printed.
    public var password: String?
    /// Where the URL came from (`--db`, `STOCKWATCH_DB` or a config file), for errors.
    public var source: String

    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// `source` names where the URL came from (`--db`, `STOCKWATCH_DB`, a config file), for errors.
    public static func parse(_ text: String, source: String, environment: [String: String]) throws(StockwatchError) -> PostgresLocation {
        func refuse(_ reason: String) -> StockwatchError {
            // The URL may hold a password: name the source, never echo the whole value.
            .invalidValue(option: source, value: redacted(text), reason: reason)
        }
        guard isURL(text), let components = URLComponents(string: text) else {
            throw refuse("not a PostgreSQL URL (postgres://USER@HOST:PORT/DBNAME?sslmode=MODE)")
        }
        let env = { (name: String) -> String? in environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        // An IPv6 address comes in brackets (postgres://[::1]:5432/db), which name no host.
        let hostText = components.percentEncodedHost.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
            .map { $0.hasPrefix("[") && $0.hasSuffix("]") ? String($0.dropFirst().dropLast()) : $0 }
        var parameters: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard ["sslmode", "sslrootcert", "host", "port", "user", "dbname", "application_name", "connect_timeout"].contains(item.name) else {
                throw refuse("unknown parameter '\(item.name)' (known: sslmode, sslrootcert, host, port, user, dbname)")
            }
            parameters[item.name] = item.value ?? ""
        }
        let host = parameters["host"] ?? hostText ?? env("PGHOST") ?? "/var/run/postgresql"
        let portText = parameters["port"] ?? components.port.map(String.init) ?? env("PGPORT") ?? "5432"
        guard let port = Int(portText), (1...65535).contains(port) else { throw refuse("port '\(portText)' is not a number from 1 to 65535") }
        let pathName = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let user = parameters["user"] ?? components.user?.removingPercentEncoding ?? env("PGUSER") ?? NSUserName()
        let database = parameters["dbname"] ?? (pathName.isEmpty ? nil : pathName.removingPercentEncoding) ?? env("PGDATABASE") ?? user
        let modeText = parameters["sslmode"] ?? env("PGSSLMODE") ?? "prefer"
        guard let mode = SSLMode(rawValue: modeText) else {
            throw refuse("sslmode '\(modeText)' is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let password = components.password?.removingPercentEncoding
        return PostgresLocation(
            host: host, port: port, user: user, database: database, sslMode: mode,
            sslRootCert: parameters["sslrootcert"] ?? env("PGSSLROOTCERT"),
            passwordInURL: password, password: password, source: source)
    }

    /// The URL with any password replaced by `***`, for messages.
    public static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "postgres://***"
    }

    /// What `status` and messages show: never a password.
    public var description: String { "postgres://\(user)@\(urlHost):\(port)/\(database)" }

    /// Where messages say the server is: the socket file, or HOST:PORT.
    public var endpoint: String { unixSocketPath ?? "\(urlHost):\(port)" }

    /// The host as a URL writes it: a socket folder or an IPv6 address in brackets.
    var urlHost: String { host.hasPrefix("/") || host.contains(":") ? "[\(host)]" : host }

    /// The socket file when `host` is a folder (libpq's rule).
    public var unixSocketPath: String? { host.hasPrefix("/") ? "\(host)/.s.PGSQL.\(port)" : nil }

    /// libpq's `.pgpass`: `host:port:database:user:password` lines, `*` matching anything,
    /// `\:` and `\\` escaped, `#` comments; the first line that matches wins.
    public static func pgpassLookup(_ text: String, host: String, port: Int, database: String, user: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = []
            var current = ""
            var escaped = false
            for character in line {
                if escaped { current.append(character); escaped = false }
                else if character == "\\" { escaped = true }
                else if character == ":", fields.count < 4 { fields.append(current); current = "" }
                else { current.append(character) }
            }
            fields.append(current)
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}
