import Foundation

/// The effective settings: built-in defaults overlaid with the config file.
public struct Config: Sendable, Equatable {
    /// The file these settings were read from, or nil for built-in defaults.
    public var file: String?
    /// Channels that alerts notify when `--notify` is not given.
    public var defaultNotify: [String] = ["stdout"]
    public var channels: [String: ChannelConfig] = [:]
    public var providers: [String: ProviderConfig] = [:]

    public init() {}

    /// `stdout` exists without config; everything else must be declared.
    public func channel(named name: String) -> ChannelConfig? {
        if let channel = channels[name] { return channel }
        return name == "stdout" ? ChannelConfig(name: "stdout", type: .stdout) : nil
    }

    public var channelNames: [String] {
        Array(Set(channels.keys).union(["stdout"])).sorted()
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

    public init(name: String, type: ChannelType) {
        self.name = name
        self.type = type
    }
}

/// The price providers stockwatch knows. Their behaviour arrives with `fetch`.
public enum ProviderName: String, Sendable, CaseIterable {
    case fixer, currencylayer, finnhub, stooq

    /// Stooq needs no key; the others cannot work without one.
    public var needsKey: Bool { self != .stooq }
    public var keyEnvironmentVariable: String { "STOCKWATCH_\(rawValue.uppercased())_API_KEY" }
}

public struct ProviderConfig: Sendable, Equatable {
    public var name: ProviderName
    public var apiKey: SecretSource?
    public var baseURL: String?

    public init(name: ProviderName) { self.name = name }
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
