import Foundation
import StockwatchModel

/// The effective settings: built-in defaults overlaid with the config file.
public struct Config: Sendable, Equatable {
    /// The file these settings were read from, or nil for built-in defaults.
    public var file: String?
    /// Channels that alerts notify when `--notify` is not given.
    public var defaultNotify: [String] = ["stdout"]
    public var channels: [String: ChannelConfig] = [:]
    public var providers: [String: ProviderConfig] = [:]
    /// `[routing]`: providers asked for currency pairs and for stocks, in order; nil means
    /// the configured ones in the default order.
    public var fxRoute: [ProviderName]?
    public var stockRoute: [ProviderName]?
    /// `[fetch] watch`: symbols fetched even when no alert watches them.
    public var watch: [String] = []
    /// `[fetch] max_age`: older quotes are rejected, never judged as current.
    public var maxAgeSeconds: Int64 = 86_400
    /// `[retention] quotes`.
    public var quoteRetentionSeconds: Int64 = 90 * 86_400
    /// `[notify]`: how deliveries are sent and retried.
    public var notify = NotifySettings()
    /// `[serve]`: the API and WebSocket server.
    public var serve = ServeSettings()
    /// `[database]`: a PostgreSQL URL instead of the SQLite file, and its password file.
    public var database = DatabaseSettings()

    public init() {}

    /// The providers asked for one kind of symbol, in order.
    public func route(for kind: Symbol.Kind) -> [ProviderName] {
        let defaults: [ProviderName] = kind == .currencyPair ? [.fixer, .currencylayer] : [.finnhub, .stooq]
        return (kind == .currencyPair ? fxRoute : stockRoute) ?? defaults.filter { providers[$0.rawValue] != nil }
    }

    /// `stdout` exists without config; everything else must be declared.
    public func channel(named name: String) -> ChannelConfig? {
        if let channel = channels[name] { return channel }
        return name == "stdout" ? ChannelConfig(name: "stdout", type: .stdout) : nil
    }

    public var channelNames: [String] {
        Array(Set(channels.keys).union(["stdout"])).sorted()
    }

    /// The channels alerts created through `serve`'s API may use.
    public var apiChannelNames: [String] {
        serve.apiChannels ?? channelNames.filter { [.fcm, .stdout].contains(channel(named: $0)!.type) }
    }
}

/// `[notify]`: concurrency, retries with exponential backoff and full jitter, and the
/// lease that lets another process take over the deliveries of a process that died.
public struct NotifySettings: Sendable, Equatable {
    /// 64 by default: against nginx over TLS and against the fake FCM, a send cost about a
    /// fifth less CPU with 64 in flight than with 16 (more answers per event-loop wake-up;
    /// docs/benchmarks.md, twenty-fifth session).
    public var concurrency = 64
    public var maxAttempts = 10
    public var backoffBaseSeconds: Int64 = 30
    public var backoffCapSeconds: Int64 = 3600
    /// How long a claimed delivery belongs to one notify process. Longer than any send
    /// can take (channel timeouts are capped below it), short enough that a killed
    /// run's deliveries are sent by a later tick.
    public var leaseSeconds: Int64 = 120

    public init() {}
}

/// `[serve]`: where `stockwatch serve` listens and what it allows.
public struct ServeSettings: Sendable, Equatable {
    public var listen = ListenAddress(host: "127.0.0.1", port: 8080)
    /// WebSocket streams one user may hold open at once (a few phones and tablets).
    public var maxConnectionsPerUser = 8
    /// Browser origins allowed to call the API and open the stream; none by default
    /// (the mobile app sends no Origin header).
    public var allowedOrigins: [String] = []
    /// Channels an app's user may route alerts to; nil means every fcm and stdout
    /// channel. Never the admins' webhooks and programs unless listed.
    public var apiChannels: [String]?
    /// What one app user may hold and do through the API (admins at the shell are not
    /// limited): each alert can fire every evaluate and each device multiplies every push.
    public var maxAlertsPerUser = 1_000
    public var maxDevicesPerUser = 20
    /// Writes (POST and DELETE) one user may make per minute on one serve instance.
    public var writesPerMinute = 120
    /// How long a client has to send a complete request head (the first request of a
    /// connection included): a connection that sends nothing, or a header line now and
    /// then (slowloris), is closed after this.
    public var requestHeadTimeoutSeconds: Int64 = 10
    /// Connections one TCP peer address may hold open at once; 0: no limit. Behind a
    /// reverse proxy every client has the proxy's address: turn it off there and let the
    /// proxy enforce its own limit.
    public var maxConnectionsPerAddress = 512

    public init() {}

    /// Replaces `allowed_origins` (the config key, or `serve --allowed-origin`), checking each.
    public mutating func allowOrigins(_ origins: [String], option: String) throws(StockwatchError) {
        for origin in origins where !Self.isOrigin(origin) {
            throw .invalidValue(option: option, value: origin, reason: "an origin is scheme://host[:port] with no path, e.g. https://app.example.com")
        }
        allowedOrigins = origins
    }

    private static func isOrigin(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else { return false }
        return url.path.isEmpty && url.query == nil && url.fragment == nil
    }
}

/// HOST:PORT for `serve --listen` and `[serve] listen`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func parse(_ text: String, option: String) throws(StockwatchError) -> ListenAddress {
        let reason = "expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 (port 0 picks a free one)"
        guard let colon = text.lastIndex(of: ":") else { throw .invalidValue(option: option, value: text, reason: reason) }
        var host = String(text[..<colon])
        // An IPv6 address is bracketed, and only one is: "[::1" or "[zz]" is a typo.
        if host.hasPrefix("[") || host.hasSuffix("]") {
            guard host.hasPrefix("["), host.hasSuffix("]"), host.count > 2, host.dropFirst().dropLast().contains(":") else {
                throw .invalidValue(option: option, value: text, reason: reason)
            }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw .invalidValue(option: option, value: text, reason: reason)
        }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "[" || $0 == "]" }),
              let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else { throw .invalidValue(option: option, value: text, reason: reason) }
        return ListenAddress(host: host, port: port)
    }
}

public enum ChannelType: String, Sendable, CaseIterable {
    case fcm, webhook, exec, stdout
}

public struct ChannelConfig: Sendable, Equatable {
    public var name: String
    public var type: ChannelType
    public var url: String?
    public var secret: SecretSource?
    public var serviceAccountFile: String?
    public var command: [String]?
    public var timeoutSeconds: Int64?
    /// fcm: where messages are sent (a proxy or a test server); Google's by default.
    public var apiBaseURL: String?
    /// fcm: how long FCM and APNs keep a push for a phone that is offline, from the send
    /// (0: deliver now or never). A price from hours ago is noise.
    public var ttlSeconds: Int64?
    /// fcm: the category the app defines its buttons for (snooze, dismiss): Android's
    /// `click_action` and APNs' `aps.category`.
    public var clickAction: String?
    /// fcm and webhook: a PEM file of the certificates this channel's HTTPS servers are
    /// checked against, instead of the system's (a private CA, a proxy, a test server).
    public var caFile: String?
    /// What its deliveries do while it is quiet on their user's clock: nil is the default,
    /// a digest for fcm (a phone at night) and sent at once for the other types.
    public var quietHours: QuietHoursPolicy?
    public var effectiveQuietHours: QuietHoursPolicy { quietHours ?? (type == .fcm ? .digest : .ignore) }
    public var honoursQuietHours: Bool { effectiveQuietHours != .ignore }

    public static let defaultTimeoutSeconds: Int64 = 15
    public static let defaultFCMBaseURL = "https://fcm.googleapis.com"
    public static let defaultTTLSeconds: Int64 = 3_600
    /// FCM's longest time to live: 28 days.
    public static let maximumTTLSeconds: Int64 = 2_419_200
    public var effectiveTTLSeconds: Int64 { ttlSeconds ?? Self.defaultTTLSeconds }
    public var effectiveTimeoutSeconds: Int64 { timeoutSeconds ?? Self.defaultTimeoutSeconds }

    /// The longest one send can take: an fcm send may wait for a token request, the
    /// message, a token refresh after a 401 and the message again.
    public var longestSendSeconds: Int64 { effectiveTimeoutSeconds * (type == .fcm ? 4 : 1) }

    public init(name: String, type: ChannelType) {
        self.name = name
        self.type = type
    }
}

public struct ProviderConfig: Sendable, Equatable {
    public var name: ProviderName
    public var apiKey: SecretSource?
    public var baseURL: String?
    /// No request before this long has passed since the last successful one (plan budgets).
    public var minIntervalSeconds: Int64 = 0
    public var timeoutSeconds: Int64 = 15
    public var connectTimeoutSeconds: Int64 = 5
    /// Day of the month (UTC) the plan's monthly allowance resets; after error 104 the
    /// provider is not asked again until then.
    public var quotaResetDay: Int = 1
    /// fixer's `base` / currencylayer's `source` currency (free plans: EUR and USD).
    public var baseCurrency: String?
    /// Most requests one run may make (Finnhub's free tier: 60 a minute, one run a minute).
    public var maxRequestsPerRun: Int = 50

    public init(name: ProviderName) { self.name = name }

    public var effectiveBaseURL: String { baseURL ?? name.defaultBaseURL }
    public var effectiveBaseCurrency: String { baseCurrency ?? (name == .currencylayer ? "USD" : "EUR") }
}

/// Where a secret comes from. Never argv: a file (mode 0600), an environment
/// variable, or inline in a config file that is itself 0600.
public enum SecretSource: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    case file(String)
    case environment(String)
    case inline(configFile: String, value: String)

    /// Printing a source never prints the secret itself.
    public var description: String { masked }
    public var debugDescription: String { masked }

    public var masked: String {
        switch self {
        case let .file(path): "(from file \(path))"
        case let .environment(name): "(from environment \(name))"
        case .inline: "(inline, ********)"
        }
    }
}

/// A channel's `quiet_hours`: wait and send each held delivery when quiet hours end,
/// wait and send them as one digest push per device (fcm only), or send at once.
public enum QuietHoursPolicy: String, Sendable, CaseIterable {
    case hold, digest, ignore
}
