import Foundation
import StockwatchModel

/// `config check`: the effective settings with every secret resolved (so a missing or
/// world-readable secret file fails now, not at 3 a.m.) and shown masked.
public struct ConfigReport: Encodable, Sendable {
    public struct Channel: Encodable, Sendable {
        public var name: String
        public var type: String
        public var url: String?
        public var secret: String?
        public var serviceAccountFile: String?
        public var command: [String]?
        public var timeoutSeconds: Int64?
        enum CodingKeys: String, CodingKey {
            case name, type, url, secret, command
            case serviceAccountFile = "service_account_file"
            case timeoutSeconds = "timeout_seconds"
        }
    }

    public struct Provider: Encodable, Sendable {
        public var name: String
        public var baseURL: String?
        public var apiKey: String?
        enum CodingKeys: String, CodingKey { case name, baseURL = "base_url", apiKey = "api_key" }
    }

    public struct Serve: Encodable, Sendable {
        public var listen: String
        public var maxConnectionsPerUser: Int
        public var allowedOrigins: [String]
        public var apiChannels: [String]
        public var maxAlertsPerUser: Int
        public var maxDevicesPerUser: Int
        public var writesPerMinute: Int
        enum CodingKeys: String, CodingKey {
            case listen
            case maxConnectionsPerUser = "max_connections_per_user"
            case maxAlertsPerUser = "max_alerts_per_user"
            case maxDevicesPerUser = "max_devices_per_user"
            case writesPerMinute = "writes_per_minute"
            case allowedOrigins = "allowed_origins"
            case apiChannels = "api_channels"
        }
    }

    public var file: String?
    public var database: String
    public var defaultNotify: [String]
    public var channels: [Channel]
    public var providers: [Provider]
    public var serve: Serve

    enum CodingKeys: String, CodingKey {
        case file, database, channels, providers, serve
        case defaultNotify = "default_notify"
    }

    public static func check(_ config: Config, databasePath: String, environment: [String: String]) throws(StockwatchError) -> ConfigReport {
        var channels: [Channel] = []
        for name in config.channelNames {
            let channel = config.channel(named: name)!
            _ = try PreparedChannel.prepare(name, config: config, environment: environment)
            channels.append(Channel(
                name: name, type: channel.type.rawValue, url: channel.url, secret: channel.secret?.masked,
                serviceAccountFile: channel.serviceAccountFile, command: channel.command, timeoutSeconds: channel.timeoutSeconds))
        }
        var providers: [Provider] = []
        for name in config.providers.keys.sorted() {
            let provider = config.providers[name]!
            if let key = provider.apiKey { _ = try SecretReader.read(key, environment: environment) }
            if provider.name.needsKey, provider.apiKey == nil {
                throw .config(
                    file: config.file ?? "config", line: nil, key: "providers.\(name).api_key_file",
                    reason: "\(name) needs an API key: set api_key_file, or the environment variable \(provider.name.keyEnvironmentVariable)")
            }
            providers.append(Provider(name: name, baseURL: provider.baseURL, apiKey: provider.apiKey?.masked))
        }
        let serve = Serve(listen: config.serve.listen.description, maxConnectionsPerUser: config.serve.maxConnectionsPerUser, allowedOrigins: config.serve.allowedOrigins, apiChannels: config.apiChannelNames,
            maxAlertsPerUser: config.serve.maxAlertsPerUser, maxDevicesPerUser: config.serve.maxDevicesPerUser, writesPerMinute: config.serve.writesPerMinute)
        return ConfigReport(file: config.file, database: databasePath, defaultNotify: config.defaultNotify, channels: channels, providers: providers, serve: serve)
    }
}
