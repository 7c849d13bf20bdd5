import Foundation
import NIOSSL
import StockwatchModel
import StockwatchStore

/// The one place a configured channel becomes a sender, in two steps: `prepare` makes
/// every check notify needs (the channel exists, its secret, key file and program are
/// there and private) and reads what the sender will use; `sender` builds it. `config
/// check` stops after `prepare`, so a config that passes it never makes notify exit 78.
enum PreparedChannel {
    case stdout
    case exec(ExecSender)
    case webhook(ChannelConfig, url: String, keyBytes: Data, tls: TLSConfiguration?)
    case fcm(ChannelConfig, ServiceAccount, tls: TLSConfiguration?)

    static func prepare(_ name: String, config: Config, environment: [String: String]) throws(StockwatchError) -> PreparedChannel {
        guard let channel = config.channel(named: name) else {
            throw .config(
                file: config.file ?? "config", line: nil, key: "channels.\(name)",
                reason: "deliveries wait for channel '\(name)', which the config does not define; they are kept until it does")
        }
        switch channel.type {
        case .stdout:
            return .stdout
        case .exec:
            return .exec(try ExecSender(channel: channel))
        case .webhook:
            let (url, key) = try WebhookSender.urlAndKey(of: channel, environment: environment)
            return .webhook(channel, url: url, keyBytes: key.withUnsafeBytes { Data($0) }, tls: try trust(of: channel, config: config))
        case .fcm:
            guard let path = channel.serviceAccountFile else {
                throw .config(file: config.file ?? "config", line: nil, key: "channels.\(name).service_account_file", reason: "is required for an fcm channel")
            }
            return .fcm(channel, try ServiceAccount.load(path: path), tls: try trust(of: channel, config: config))
        }
    }

    /// The channel's `ca_file` as the only trust roots of its HTTPS requests; nil (the
    /// system's roots) without one.
    static func trust(of channel: ChannelConfig, config: Config) throws(StockwatchError) -> TLSConfiguration? {
        guard let path = channel.caFile else { return nil }
        let certificates: [NIOSSLCertificate]
        do { certificates = try NIOSSLCertificate.fromPEMFile(path) } catch {
            throw .config(file: config.file ?? "config", line: nil, key: "channels.\(channel.name).ca_file", reason: "cannot read PEM certificates from \(path)")
        }
        guard !certificates.isEmpty else {
            throw .config(file: config.file ?? "config", line: nil, key: "channels.\(channel.name).ca_file", reason: "no PEM certificate in \(path)")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(certificates)
        return tls
    }

    /// Whether the sender posts over HTTP (one client serves every such channel).
    var needsHTTP: Bool {
        switch self {
        case .webhook, .fcm: true
        case .stdout, .exec: false
        }
    }

    /// `http` is required when `needsHTTP`.
    func sender(database: any AccessTokenStore, http: HTTPTransport?, writeLine: @escaping @Sendable (String) -> Void) -> any ChannelSender {
        switch self {
        case .stdout: StdoutSender(write: writeLine)
        case let .exec(sender): sender
        case let .webhook(channel, url, keyBytes, tls): WebhookSender(channel: channel, url: url, keyBytes: keyBytes, http: http!, tls: tls)
        case let .fcm(channel, account, tls): FCMSender(channel: channel, account: account, database: database, http: http!, tls: tls)
        }
    }
}
