import Foundation
import TOMLKit
import StockwatchModel
import StockwatchStore

/// Reads config.toml. Every key is known: a typo is an error naming the file, key and line,
/// not a silently ignored setting.
public enum ConfigLoader {
    public static func load(path: String, named: Bool, environment: [String: String]) throws(StockwatchError) -> Config {
        guard FileManager.default.fileExists(atPath: path) else {
            if named { throw .config(file: path, line: nil, key: nil, reason: "file not found") }
            return Config()
        }
        // The config names programs the exec channel runs: nobody else may swap it.
        try PathSafety.check(path)
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw .config(file: path, line: nil, key: nil, reason: "cannot read file (permissions, or not UTF-8)")
        }
        return try parse(text, file: path, environment: environment)
    }

    public static func parse(_ text: String, file: String, environment: [String: String]) throws(StockwatchError) -> Config {
        // TOML forbids NUL, and the C parser underneath would stop reading at it,
        // silently ignoring the rest of the file.
        if let nul = text.utf8.firstIndex(of: 0) {
            let line = text.utf8[..<nul].count(where: { $0 == UInt8(ascii: "\n") }) + 1
            throw .config(file: file, line: line, key: nil, reason: "syntax error: a NUL byte (TOML allows none)")
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .config(file: file, line: error.source.begin.line, key: nil, reason: "syntax error: \(error.description)")
        } catch {
            throw .config(file: file, line: nil, key: nil, reason: "syntax error: \(error)")
        }
        var reader = TableReader(file: file, lines: LineLocator(text), environment: environment)
        return try reader.read(root)
    }
}

/// Walks the parsed TOML, building `Config` and rejecting what it does not know; every
/// error names its key and line. Channels: ConfigLoader+Channels.swift.
struct TableReader {
    let file: String
    let lines: LineLocator
    let environment: [String: String]
    var config = Config()

    init(file: String, lines: LineLocator, environment: [String: String]) {
        self.file = file
        self.lines = lines
        self.environment = environment
        config.file = file
    }

    mutating func read(_ root: TOMLTable) throws(StockwatchError) -> Config {
        try expectKeys(root, path: [], allowed: ["alerts", "channels", "providers", "routing", "fetch", "retention", "notify", "serve", "database"])
        if let database = try table(root, "database", path: []) {
            try expectKeys(database, path: ["database"], allowed: ["url", "password_file"])
            if let url = try string(database, "url", path: ["database"]) {
                guard PostgresLocation.isURL(url) else {
                    throw error(["database"], "url", "must be a PostgreSQL URL (postgres://USER@HOST:PORT/DBNAME); for an SQLite file use --db or STOCKWATCH_DB")
                }
                // A password in the URL is an inline secret: the file must be private.
                if URLComponents(string: url)?.password != nil {
                    do { try SecretReader.checkPrivate(file) } catch { throw StockwatchError.config(file: file, line: lines.line(of: "url", in: ["database"]), key: "database.url", reason: "holds a password but " + error.message) }
                }
                config.database.url = url
            }
            if let passwordFile = try string(database, "password_file", path: ["database"]) { config.database.passwordFile = resolve(passwordFile) }
        }
        if let alerts = try table(root, "alerts", path: []) {
            try expectKeys(alerts, path: ["alerts"], allowed: ["default_notify"])
            if let value = alerts["default_notify"] {
                config.defaultNotify = try stringList(value, key: "default_notify", path: ["alerts"])
                if config.defaultNotify.isEmpty {
                    throw error(["alerts"], "default_notify", "must name at least one channel")
                }
            }
        }
        if let channels = try table(root, "channels", path: []) {
            for name in channels.keys.sorted() {
                config.channels[name] = try channel(named: name, in: channels)
            }
        }
        if let providers = try table(root, "providers", path: []) {
            for name in providers.keys.sorted() {
                guard let provider = ProviderName(rawValue: name) else {
                    throw error(["providers"], name, "unknown provider (known: \(ProviderName.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                config.providers[name] = try self.provider(provider, in: providers)
            }
        }
        if let routing = try table(root, "routing", path: []) {
            try expectKeys(routing, path: ["routing"], allowed: ["fx", "stocks"])
            if let fx = routing["fx"] { config.fxRoute = try route(fx, key: "fx", currencies: true) }
            if let stocks = routing["stocks"] { config.stockRoute = try route(stocks, key: "stocks", currencies: false) }
        }
        if let fetch = try table(root, "fetch", path: []) {
            try expectKeys(fetch, path: ["fetch"], allowed: ["watch", "max_age"])
            if let watch = fetch["watch"] {
                config.watch = try stringList(watch, key: "watch", path: ["fetch"])
                for symbol in config.watch {
                    do { _ = try Symbol.parse(symbol) } catch { throw self.error(["fetch"], "watch", error.message) }
                }
            }
            if let maxAge = try string(fetch, "max_age", path: ["fetch"]) { config.maxAgeSeconds = try duration(maxAge, path: ["fetch"], key: "max_age") }
        }
        if let retention = try table(root, "retention", path: []) {
            try expectKeys(retention, path: ["retention"], allowed: ["quotes"])
            if let quotes = try string(retention, "quotes", path: ["retention"]) { config.quoteRetentionSeconds = try duration(quotes, path: ["retention"], key: "quotes") }
        }
        if let notify = try table(root, "notify", path: []) { try readNotify(notify) }
        if let serve = try table(root, "serve", path: []) { try readServe(serve) }
        // A send that outlives its lease could be claimed and sent again by another run.
        for channel in config.channels.values.sorted(by: { $0.name < $1.name })
        where channel.longestSendSeconds + 10 > config.notify.leaseSeconds {
            throw error(["notify"], "lease", "must be at least 10 s longer than the longest send of channel '\(channel.name)' (\(channel.longestSendSeconds) s: its timeout\(channel.type == .fcm ? " times 4, for token requests and one retry after a 401" : "")); lease is \(config.notify.leaseSeconds) s")
        }
        for name in config.defaultNotify where config.channel(named: name) == nil {
            throw error(["alerts"], "default_notify", "no channel named '\(name)'")
        }
        for name in config.serve.apiChannels ?? [] where config.channel(named: name) == nil {
            throw error(["serve"], "api_channels", "no channel named '\(name)'")
        }
        return config
    }

    private mutating func readNotify(_ table: TOMLTable) throws(StockwatchError) {
        let path = ["notify"]
        try expectKeys(table, path: path, allowed: ["concurrency", "max_attempts", "backoff_base", "backoff_cap", "lease"])
        var notify = config.notify
        if let value = try integer(table, "concurrency", path: path, in: 1...256) { notify.concurrency = value }
        if let value = try integer(table, "max_attempts", path: path, in: 1...100) { notify.maxAttempts = value }
        if let text = try string(table, "backoff_base", path: path) { notify.backoffBaseSeconds = try duration(text, path: path, key: "backoff_base") }
        if let text = try string(table, "backoff_cap", path: path) { notify.backoffCapSeconds = try duration(text, path: path, key: "backoff_cap") }
        if let text = try string(table, "lease", path: path) { notify.leaseSeconds = try duration(text, path: path, key: "lease") }
        if notify.backoffCapSeconds < notify.backoffBaseSeconds {
            throw error(path, "backoff_cap", "must not be shorter than backoff_base")
        }
        config.notify = notify
    }

    private mutating func readServe(_ table: TOMLTable) throws(StockwatchError) {
        let path = ["serve"]
        try expectKeys(table, path: path, allowed: [
            "listen", "max_connections_per_user", "allowed_origins", "api_channels", "max_alerts_per_user", "max_devices_per_user", "writes_per_minute",
            "request_head_timeout", "max_connections_per_address",
        ])
        if let listen = try string(table, "listen", path: path) {
            do { config.serve.listen = try ListenAddress.parse(listen, option: "listen") } catch { throw self.error(path, "listen", error.message) }
        }
        if let value = try integer(table, "max_connections_per_user", path: path, in: 1...1000) { config.serve.maxConnectionsPerUser = value }
        if let value = try integer(table, "max_alerts_per_user", path: path, in: 1...1_000_000) { config.serve.maxAlertsPerUser = value }
        if let value = try integer(table, "max_devices_per_user", path: path, in: 1...1000) { config.serve.maxDevicesPerUser = value }
        if let value = try integer(table, "writes_per_minute", path: path, in: 1...100_000) { config.serve.writesPerMinute = value }
        if let value = try integer(table, "max_connections_per_address", path: path, in: 0...1_000_000) { config.serve.maxConnectionsPerAddress = value }
        if let text = try string(table, "request_head_timeout", path: path) {
            let seconds = try duration(text, path: path, key: "request_head_timeout")
            guard (1...300).contains(seconds) else { throw error(path, "request_head_timeout", "must be between 1s and 5m") }
            config.serve.requestHeadTimeoutSeconds = seconds
        }
        if let value = table["allowed_origins"] {
            let origins = try stringList(value, key: "allowed_origins", path: path)
            do { try config.serve.allowOrigins(origins, option: "allowed_origins") } catch { throw self.error(path, "allowed_origins", error.message) }
        }
        if let value = table["api_channels"] {
            config.serve.apiChannels = try stringList(value, key: "api_channels", path: path)
        }
    }

    private func provider(_ name: ProviderName, in providers: TOMLTable) throws(StockwatchError) -> ProviderConfig {
        let path = ["providers", name.rawValue]
        guard let table = try table(providers, name.rawValue, path: ["providers"]) else {
            throw error(["providers"], name.rawValue, "must be a table")
        }
        var allowed: Set<String> = ["api_key_file", "api_key", "base_url", "min_interval", "timeout", "connect_timeout"]
        if name.servesCurrencies { allowed.formUnion(["quota_reset", name == .fixer ? "base" : "source"]) }
        if name == .finnhub { allowed.insert("max_requests_per_run") }
        try expectKeys(table, path: path, allowed: allowed)
        var provider = ProviderConfig(name: name)
        if let text = try string(table, "min_interval", path: path) { provider.minIntervalSeconds = try duration(text, path: path, key: "min_interval") }
        if let text = try string(table, "timeout", path: path) { provider.timeoutSeconds = try duration(text, path: path, key: "timeout") }
        if let text = try string(table, "connect_timeout", path: path) { provider.connectTimeoutSeconds = try duration(text, path: path, key: "connect_timeout") }
        if let day = table["quota_reset"] {
            guard let day = day.int, (1...28).contains(day) else { throw error(path, "quota_reset", "must be a day of the month from 1 to 28") }
            provider.quotaResetDay = day
        }
        if let limit = table["max_requests_per_run"] {
            guard let limit = limit.int, limit > 0 else { throw error(path, "max_requests_per_run", "must be a whole number above 0") }
            provider.maxRequestsPerRun = limit
        }
        for key in ["base", "source"] {
            if let code = try string(table, key, path: path) {
                guard Symbol.isoCurrencyCodes.contains(code.uppercased()) else { throw error(path, key, "'\(code)' is not an ISO 4217 currency code") }
                provider.baseCurrency = code.uppercased()
            }
        }
        provider.baseURL = try string(table, "base_url", path: path)
        if let url = provider.baseURL, URL(string: url)?.host == nil {
            throw error(path, "base_url", "not a URL: \(url)")
        }
        provider.apiKey = try secret(table, key: "api_key", path: path, environmentName: name.keyEnvironmentVariable)
        if !name.needsKey, provider.apiKey != nil {
            throw error(path, "api_key", "\(name.rawValue) takes no key")
        }
        return provider
    }

    private func route(_ value: TOMLValueConvertible, key: String, currencies: Bool) throws(StockwatchError) -> [ProviderName] {
        var route: [ProviderName] = []
        for name in try stringList(value, key: key, path: ["routing"]) {
            guard let provider = ProviderName(rawValue: name), provider.servesCurrencies == currencies else {
                let valid = ProviderName.allCases.filter { $0.servesCurrencies == currencies }.map(\.rawValue).joined(separator: ", ")
                throw error(["routing"], key, "'\(name)' cannot serve \(currencies ? "currency pairs" : "stocks") (use \(valid))")
            }
            guard config.providers[name] != nil else { throw error(["routing"], key, "provider '\(name)' has no [providers.\(name)] table") }
            route.append(provider)
        }
        return route
    }

    /// A secret from `KEY_file`, inline `KEY` (config must then be 0600), or the environment.
    func secret(_ table: TOMLTable, key: String, path: [String], environmentName: String) throws(StockwatchError) -> SecretSource? {
        let fileKey = key + "_file"
        let filePath = try string(table, fileKey, path: path)
        let inline = try string(table, key, path: path)
        if filePath != nil, inline != nil { throw error(path, key, "give either \(key) or \(fileKey), not both") }
        if let filePath { return .file(resolve(filePath)) }
        if let inline {
            do { try SecretReader.checkPrivate(file) } catch { throw StockwatchError.config(file: file, line: lines.line(of: key, in: path), key: path.joined(separator: ".") + "." + key, reason: "holds an inline secret but " + error.message) }
            return .inline(configFile: file, value: inline)
        }
        if let value = environment[environmentName], !value.isEmpty { return .environment(environmentName) }
        return nil
    }

    /// A relative path in the config file is relative to the file's folder, not to
    /// wherever cron happens to run. A config named without a folder ("stockwatch.toml")
    /// is in the working directory (NSString's deletingLastPathComponent trapped on it).
    func resolve(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        let folder = file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
        return folder + "/" + path
    }

    // MARK: - Typed access with errors that name the key and line

    func expectKeys(_ table: TOMLTable, path: [String], allowed: Set<String>) throws(StockwatchError) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            let known = allowed.sorted().joined(separator: ", ")
            throw error(path, key, "unknown key" + (path.isEmpty ? " (known sections: \(known))" : " in [\(path.joined(separator: "."))] (known: \(known))"))
        }
    }

    func table(_ table: TOMLTable, _ key: String, path: [String]) throws(StockwatchError) -> TOMLTable? {
        guard let value = table[key] else { return nil }
        guard let result = value.table else { throw error(path, key, "must be a table") }
        return result
    }

    func string(_ table: TOMLTable, _ key: String, path: [String]) throws(StockwatchError) -> String? {
        guard let value = table[key] else { return nil }
        guard let result = value.string else { throw error(path, key, "must be a string") }
        return result
    }

    private func integer(_ table: TOMLTable, _ key: String, path: [String], in range: ClosedRange<Int>) throws(StockwatchError) -> Int? {
        guard let value = table[key] else { return nil }
        guard let result = value.int, range.contains(result) else {
            throw error(path, key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return result
    }

    func stringList(_ value: TOMLValueConvertible, key: String, path: [String]) throws(StockwatchError) -> [String] {
        if let single = value.string { return [single] }
        guard let array = value.array else { throw error(path, key, "must be a string or a list of strings") }
        var result: [String] = []
        for element in array {
            guard let string = element.string else { throw error(path, key, "must be a list of strings") }
            result.append(string)
        }
        return result
    }

    func duration(_ text: String, path: [String], key: String) throws(StockwatchError) -> Int64 {
        do { return try ValueParser.duration(text, option: key) } catch { throw self.error(path, key, error.message) }
    }

    func error(_ path: [String], _ key: String, _ reason: String) -> StockwatchError {
        .config(file: file, line: lines.line(of: key, in: path), key: (path + [key]).joined(separator: "."), reason: reason)
    }
}

/// TOMLKit does not expose where a key was written, so we find it in the text:
/// the line assigning `key` inside the `[path]` table (or a `[path.key]` header).
struct LineLocator {
    private let lines: [Substring]

    init(_ text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    func line(of key: String, in path: [String]) -> Int? {
        var current: [String] = []
        var fallback: Int?
        for (index, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                let inner = line.trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                let header = inner.split(separator: "#").first.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "[] ")) } ?? inner
                current = header.split(separator: ".").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }
                if current == path + [key] { return index + 1 }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
            let dotted = name.split(separator: ".").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }
            if current + dotted == path + [key] || (current == path && dotted.first == key) { return index + 1 }
            if dotted.last == key, fallback == nil { fallback = index + 1 }
        }
        return fallback
    }
}
