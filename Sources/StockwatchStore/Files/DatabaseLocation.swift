import Foundation

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
