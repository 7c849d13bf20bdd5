import Foundation
import StockwatchModel

/// Where the data lives: an SQLite file, or a PostgreSQL database.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    public var description: String {
        switch self {
        case let .sqlite(path): path
        case let .postgres(location): location.description
        }
    }

    /// One resolution order for all three: `--db`, then `STOCKWATCH_DB`, then the config
    /// file's `[database] url`, then the default file. A PostgreSQL URL there names the
    /// server; anything else is an SQLite path. `--db` and `STOCKWATCH_DB` show in `ps`,
    /// logs and shell history, so a URL with a password there is refused.
    public static func resolve(
        explicit: String?, environment: [String: String], configURL: (url: String, file: String)?
    ) throws(StockwatchError) -> DatabaseLocation {
        var candidates: [(value: String, source: String)] = []
        if let explicit, !explicit.isEmpty { candidates.append((explicit, "--db")) }
        if let env = environment["STOCKWATCH_DB"], !env.isEmpty { candidates.append((env, "STOCKWATCH_DB")) }
        if let configURL { candidates.append((configURL.url, configURL.file)) }
        guard let (value, source) = candidates.first else { return .sqlite(path: Paths.databasePath(explicit: nil, environment: environment)) }
        guard PostgresLocation.isURL(value) else { return .sqlite(path: value) }
        let location = try PostgresLocation.parse(value, source: source, environment: environment)
        if location.passwordInURL != nil, source == "--db" || source == "STOCKWATCH_DB" {
            throw .invalidValue(option: source, value: PostgresLocation.redacted(value),
                                reason: "a password in the URL shows in ps, logs and shell history: use PGPASSWORD, ~/.pgpass or [database] password_file")
        }
        return .postgres(location)
    }
}

/// Where files live: `--db`/`--config` first, then the environment, then XDG defaults.
public enum Paths {
    public static func databasePath(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let env = environment["STOCKWATCH_DB"], !env.isEmpty { return env }
        return xdgHome("XDG_STATE_HOME", fallback: ".local/state", environment: environment)
            + "/stockwatch/stockwatch.db"
    }

    /// Returns the config path and whether it was named explicitly (a missing named file is an error,
    /// a missing default file means built-in defaults).
    public static func configPath(explicit: String?, environment: [String: String]) -> (path: String, named: Bool) {
        if let explicit, !explicit.isEmpty { return (explicit, true) }
        if let env = environment["STOCKWATCH_CONFIG"], !env.isEmpty { return (env, true) }
        return (xdgHome("XDG_CONFIG_HOME", fallback: ".config", environment: environment) + "/stockwatch/config.toml", false)
    }

    private static func xdgHome(_ variable: String, fallback: String, environment: [String: String]) -> String {
        if let value = environment[variable], value.hasPrefix("/") { return value }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/" + fallback
    }
}
