import Foundation
import TOMLKit
import StockwatchModel
import StockwatchStore

extension TableReader {
    /// One `[channels.NAME]` table: its type, and the keys that type takes.
    func channel(named name: String, in channels: TOMLTable) throws(StockwatchError) -> ChannelConfig {
        let path = ["channels", name]
        guard let table = try table(channels, name, path: ["channels"]) else {
            throw error(["channels"], name, "must be a table")
        }
        guard Validation.isName(name) else {
            throw error(["channels"], name, "channel names use letters, digits, '-', '_', '.' and '@' (at most 64)")
        }
        try expectKeys(table, path: path, allowed: ["type", "url", "secret_file", "secret", "service_account_file", "api_base_url", "command", "timeout", "ttl", "click_action", "quiet_hours", "ca_file"])
        guard let typeName = try string(table, "type", path: path) else { throw error(path, "type", "is required (one of: \(ChannelType.allCases.map(\.rawValue).joined(separator: ", ")))") }
        guard let type = ChannelType(rawValue: typeName) else {
            throw error(path, "type", "unknown channel type '\(typeName)' (one of: \(ChannelType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if name == "stdout", type != .stdout {
            throw error(path, "type", "the channel named stdout is built in and prints to standard output; give this channel another name")
        }
        var channel = ChannelConfig(name: name, type: type)
        channel.url = try string(table, "url", path: path)
        channel.serviceAccountFile = try string(table, "service_account_file", path: path).map(resolve)
        channel.apiBaseURL = try string(table, "api_base_url", path: path)
        if let base = channel.apiBaseURL {
            guard let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw error(path, "api_base_url", "not an http(s) URL: \(base)")
            }
        }
        channel.caFile = try string(table, "ca_file", path: path).map(resolve)
        if channel.caFile != nil, type != .fcm, type != .webhook {
            throw error(path, "ca_file", "only fcm and webhook channels make HTTPS requests")
        }
        if let command = table["command"] { channel.command = try stringList(command, key: "command", path: path) }
        if let timeout = try string(table, "timeout", path: path) {
            channel.timeoutSeconds = try duration(timeout, path: path, key: "timeout")
        }
        if let ttl = try string(table, "ttl", path: path) {
            guard type == .fcm else { throw error(path, "ttl", "only an fcm channel has a time to live") }
            do {
                channel.ttlSeconds = try ValueParser.duration(ttl, option: "ttl", allowZero: true)
            } catch {
                throw self.error(path, "ttl", error.message)
            }
            guard channel.ttlSeconds! <= ChannelConfig.maximumTTLSeconds else {
                throw error(path, "ttl", "at most 28d (FCM keeps a message at most 28 days), got \(ttl)")
            }
        }
        if let text = try string(table, "quiet_hours", path: path) {
            guard let policy = QuietHoursPolicy(rawValue: text) else {
                throw error(path, "quiet_hours", "hold, digest or ignore, got '\(text)'")
            }
            guard policy != .digest || type == .fcm else { throw error(path, "quiet_hours", "only an fcm channel sends digests; use hold or ignore") }
            channel.quietHours = policy
        }
        if let action = try string(table, "click_action", path: path) {
            guard type == .fcm else { throw error(path, "click_action", "only an fcm channel has a click_action") }
            guard (1...64).contains(action.utf8.count), action.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw error(path, "click_action", "1 to 64 letters, digits, '.', '_' or '-', got '\(action)'")
            }
            channel.clickAction = action
        }
        let secretVariable = "STOCKWATCH_CHANNEL_\(name.uppercased().replacingOccurrences(of: "-", with: "_"))_SECRET"
        channel.secret = try secret(table, key: "secret", path: path, environmentName: secretVariable)
        switch type {
        case .webhook:
            guard let url = channel.url else { throw error(path, "url", "is required for a webhook channel") }
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw error(path, "url", "not an http(s) URL: \(url)")
            }
            if channel.secret == nil { throw error(path, "secret_file", "a webhook channel needs secret_file (or the environment variable \(secretVariable))") }
        case .fcm:
            if channel.serviceAccountFile == nil { throw error(path, "service_account_file", "is required for an fcm channel") }
        case .exec:
            guard let command = channel.command, let program = command.first, program.hasPrefix("/") else {
                throw error(path, "command", "an exec channel needs command = [\"/absolute/path\", \"arg\", ...]")
            }
        case .stdout:
            break
        }
        return channel
    }
}
