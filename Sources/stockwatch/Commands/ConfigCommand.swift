import ArgumentParser
import StockwatchCore
import StockwatchServer

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Inspect the configuration.", subcommands: [ConfigCheckCommand.self])
}

struct ConfigCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Validate the config and its secrets; print the effective settings, secrets masked.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let config = try global.loadConfig()
        // The database's description: never a password.
        let report = try ConfigReport.check(config, databasePath: global.location(config: config).description, environment: global.environment)
        if global.json { return Output.json(report) }
        var rows = [["config file", report.file ?? "(none: built-in defaults)"], ["database", report.database]]
        rows.append(["alerts.default_notify", report.defaultNotify.joined(separator: ", ")])
        for channel in report.channels {
            let details = [channel.url, channel.secret.map { "secret \($0)" }, channel.serviceAccountFile, channel.command?.joined(separator: " ")]
            rows.append(["channels.\(channel.name)", ([channel.type] + details.compactMap { $0 }).joined(separator: " ")])
        }
        for provider in report.providers {
            rows.append(["providers.\(provider.name)", [provider.baseURL ?? "(default URL)", provider.apiKey.map { "key \($0)" }].compactMap { $0 }.joined(separator: " ")])
        }
        rows.append(["serve.listen", report.serve.listen])
        rows.append(["serve.max_connections_per_user", String(report.serve.maxConnectionsPerUser)])
        rows.append(["serve.max_alerts_per_user", String(report.serve.maxAlertsPerUser)])
        rows.append(["serve.max_devices_per_user", String(report.serve.maxDevicesPerUser)])
        rows.append(["serve.writes_per_minute", String(report.serve.writesPerMinute)])
        rows.append(["serve.allowed_origins", report.serve.allowedOrigins.isEmpty ? "(none)" : report.serve.allowedOrigins.joined(separator: ", ")])
        rows.append(["serve.api_channels", report.serve.apiChannels.isEmpty ? "(none)" : report.serve.apiChannels.joined(separator: ", ")])
        Output.table(["SETTING", "VALUE"], rows)
    }
}
