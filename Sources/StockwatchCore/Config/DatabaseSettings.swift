import Foundation
import StockwatchModel
import StockwatchStore

/// `[database]`: where the data lives when it is not the SQLite file, and the password.
public struct DatabaseSettings: Sendable, Equatable {
    /// A PostgreSQL URL (libpq's form). `--db` and `STOCKWATCH_DB` come first.
    public var url: String?
    /// A file holding the PostgreSQL password (0600).
    public var passwordFile: String?

    public init() {}

    /// The database to open: `--db`, `STOCKWATCH_DB`, `[database] url`, then the default
    /// file. For PostgreSQL also its password, found as libpq does: in the URL (config
    /// file only), `PGPASSWORD`, `[database] password_file`, then `~/.pgpass` (or
    /// `PGPASSFILE`), each file under the rule every secret follows (0600).
    public func location(explicit: String?, environment: [String: String], configFile: String?) throws(StockwatchError) -> DatabaseLocation {
        let fromConfig = url.map { (url: $0, file: configFile ?? "config") }
        var location = try DatabaseLocation.resolve(explicit: explicit, environment: environment, configURL: fromConfig)
        guard case var .postgres(server) = location, server.password == nil else { return location }
        if let value = environment["PGPASSWORD"], !value.isEmpty {
            server.password = value
        } else if let passwordFile {
            server.password = try SecretReader.read(.file(passwordFile), environment: environment)
        } else {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            let passFile = environment["PGPASSFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.pgpass"
            if FileManager.default.fileExists(atPath: passFile) {
                let text = try SecretReader.read(.file(passFile), environment: environment)
                // libpq matches a socket connection as host "localhost".
                let host = server.unixSocketPath == nil ? server.host : "localhost"
                server.password = PostgresLocation.pgpassLookup(text, host: host, port: server.port, database: server.database, user: server.user)
            }
        }
        location = .postgres(server)
        return location
    }
}
