import ArgumentParser
import Foundation
import StockwatchCore
import StockwatchModel
import StockwatchStore
import StockwatchServer

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The database: an SQLite file, or a PostgreSQL URL without a password (default: $STOCKWATCH_DB, else [database] url, else $XDG_STATE_HOME/stockwatch/stockwatch.db).", valueName: "path-or-url"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp("The config file (default: $STOCKWATCH_CONFIG, else $XDG_CONFIG_HOME/stockwatch/config.toml).", valueName: "path"))
    var config: String?

    @Flag(name: .long, help: "Print one JSON document on stdout; errors also as JSON on stderr.")
    var json = false

    @Flag(name: .shortAndLong, help: "Say what was done.")
    var verbose = false

    /// Read once a process: each read of `ProcessInfo.environment` builds the dictionary
    /// anew (0.35M instructions), and opening a store read it three times.
    var environment: [String: String] { Self.processEnvironment }
    private static let processEnvironment = ProcessInfo.processInfo.environment

    func loadConfig() throws(StockwatchError) -> Config {
        // An empty flag is a mistake (an unset shell variable), not a request for defaults.
        for (option, value) in [("--config", config), ("--db", db)] where value?.isEmpty == true {
            throw .invalidValue(option: option, value: "", reason: "an empty path; leave the option out for the default")
        }
        let (path, named) = Paths.configPath(explicit: config, environment: environment)
        return try ConfigLoader.load(path: path, named: named, environment: environment)
    }

    /// `--db`, `STOCKWATCH_DB`, `[database] url`, then the default file.
    func location(config: Config) throws(StockwatchError) -> DatabaseLocation {
        try config.database.location(explicit: db, environment: environment, configFile: config.file)
    }

    func location() throws(StockwatchError) -> DatabaseLocation {
        try location(config: loadConfig())
    }

    /// Config first: a bad config must not leave a new database file behind. `readOnly`:
    /// the command only reads, and an SQLite store is opened without writing.
    func open(readOnly: Bool = false) throws(StockwatchError) -> (any DataStore, Config) {
        let config = try loadConfig()
        let store = try openDataStore(at: location(config: config), readOnly: readOnly)
        if let sqlite = store as? AppDatabase, sqlite.isReadOnly { OpenUntilExit.stores.append(sqlite) }
        return (store, config)
    }
}

/// A reading command's read-only SQLite connection, closed by the process's exit instead
/// of GRDB's deinit: that deinit asks Foundation's NotificationCenter to forget the queue,
/// and bridging the queue to an object there costs two scans of the static binary's
/// ~12,000 conformance records (1.4M instructions, about 4% of a cold `alert list
/// --json`). A read-only connection has nothing to write back; a writer's (a new file's)
/// still closes and checkpoints, and PostgreSQL sessions still end politely.
private enum OpenUntilExit {
    nonisolated(unsafe) static var stores: [AppDatabase] = []
}
