import Foundation
import Testing
@testable import StockwatchCore
@testable import StockwatchStore
@testable import StockwatchServer

@Suite struct ConfigTests {
    @Test func missingDefaultFileMeansDefaults() throws {
        let config = try ConfigLoader.load(path: "/nonexistent/config.toml", named: false, environment: [:])
        #expect(config.defaultNotify == ["stdout"])
        #expect(config.file == nil)
    }

    @Test func missingNamedFileIsAnError() {
        let error = expectError { _ = try ConfigLoader.load(path: "/nonexistent/config.toml", named: true, environment: [:]) }
        #expect(error == .config(file: "/nonexistent/config.toml", line: nil, key: nil, reason: "file not found"))
    }

    @Test func unknownKeyNamesFileKeyAndLine() {
        let text = """
            # comment
            [alerts]
            default_notify = "stdout"

            [channels.ops]
            type = "exec"
            command = ["/bin/true"]
            comand = ["/bin/false"]
            """
        let error = expectError { _ = try ConfigLoader.parse(text, file: "/etc/sw.toml", environment: [:]) }
        guard case let .config(file, line, key, reason)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(file == "/etc/sw.toml")
        #expect(line == 8)
        #expect(key == "channels.ops.comand")
        #expect(reason.contains("unknown key"))
        #expect(error?.exitStatus == .config)
    }

    @Test func unknownSectionAndSyntaxErrorsHaveLines() {
        let unknown = expectError { _ = try ConfigLoader.parse("\n\n[alert]\nx = 1\n", file: "c.toml", environment: [:]) }
        #expect(unknown?.message.hasPrefix("c.toml:3: key 'alert': unknown key") == true)
        let syntax = expectError { _ = try ConfigLoader.parse("[alerts]\ndefault_notify = \n", file: "c.toml", environment: [:]) }
        guard case let .config(_, line, _, reason)? = syntax else { Issue.record("no config error"); return }
        #expect(line == 2)
        #expect(reason.hasPrefix("syntax error"))
    }

    @Test func channelsAreValidated() throws {
        let store = try TemporaryStore()
        let secret = store.write("hook.secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
        let config = try ConfigLoader.parse("""
            [alerts]
            default_notify = ["ops", "stdout"]
            [channels.ops]
            type = "webhook"
            url = "https://example.com/hook"
            secret_file = "\(secret)"
            timeout = "20s"
            """, file: store.folder + "/config.toml", environment: [:])
        #expect(config.defaultNotify == ["ops", "stdout"])
        #expect(config.channel(named: "ops")?.timeoutSeconds == 20)
        #expect(config.channel(named: "stdout")?.type == .stdout)
        let report = try ConfigReport.check(config, databasePath: "db", environment: [:])
        #expect(report.channels.first { $0.name == "ops" }?.secret == "(from file \(secret))")

        let missingURL = expectError { _ = try ConfigLoader.parse("[channels.x]\ntype = \"webhook\"\n", file: "c", environment: [:]) }
        #expect(missingURL?.message.contains("channels.x.url") == true)
        let badType = expectError { _ = try ConfigLoader.parse("[channels.x]\ntype = \"pager\"\n", file: "c", environment: [:]) }
        #expect(badType?.message.contains("unknown channel type 'pager'") == true)
        let badDefault = expectError { _ = try ConfigLoader.parse("[alerts]\ndefault_notify = \"nope\"\n", file: "c", environment: [:]) }
        #expect(badDefault?.message.contains("no channel named 'nope'") == true)
    }

    /// An fcm channel's `ttl` (0 to 28 days) and `click_action`, each refused with its key
    /// when out of range, malformed, or on a channel that is not fcm.
    @Test func pushExpiryAndCategoryAreCheckedWithTheirKey() throws {
        let fcm = "[channels.phone]\ntype = \"fcm\"\nservice_account_file = \"/etc/sa.json\"\n"
        let config = try ConfigLoader.parse(fcm + "ttl = \"15m\"\nclick_action = \"PRICE_ALERT\"\n", file: "c", environment: [:])
        #expect(config.channel(named: "phone")?.effectiveTTLSeconds == 900)
        #expect(config.channel(named: "phone")?.clickAction == "PRICE_ALERT")
        #expect(try ConfigLoader.parse(fcm, file: "c", environment: [:]).channel(named: "phone")?.effectiveTTLSeconds == 3_600)
        #expect(try ConfigLoader.parse(fcm + "ttl = \"0s\"\n", file: "c", environment: [:]).channel(named: "phone")?.effectiveTTLSeconds == 0)
        for (line, fragment) in [
            ("ttl = \"29d\"", "channels.phone.ttl': at most 28d"),
            ("ttl = \"soon\"", "channels.phone.ttl"),
            ("ttl = 60", "channels.phone.ttl"),
            ("click_action = \"open app\"", "channels.phone.click_action': 1 to 64"),
            ("click_action = \"\"", "channels.phone.click_action"),
        ] {
            let error = expectError { _ = try ConfigLoader.parse(fcm + line + "\n", file: "c", environment: [:]) }
            #expect(error?.exitStatus == .config)
            #expect(error?.message.contains(fragment) == true, "\(line): \(error?.message ?? "accepted")")
        }
        let onWebhook = expectError {
            _ = try ConfigLoader.parse("[channels.hook]\ntype = \"webhook\"\nurl = \"https://x.example\"\nsecret = \"s\"\nttl = \"1h\"\n", file: "c", environment: [:])
        }
        #expect(onWebhook?.message.contains("only an fcm channel has a time to live") == true)
    }

    /// `ca_file`: beside the config file when relative, on fcm and webhook channels only.
    @Test func aChannelsCAFileIsResolvedAndOnlyForHTTPSChannels() throws {
        let fcm = "[channels.phone]\ntype = \"fcm\"\nservice_account_file = \"/etc/sa.json\"\nca_file = \"ca.pem\"\n"
        let config = try ConfigLoader.parse(fcm, file: "/etc/stockwatch/config.toml", environment: [:])
        #expect(config.channel(named: "phone")?.caFile == "/etc/stockwatch/ca.pem")
        // A config named without a folder: its folder is the working directory.
        #expect(try ConfigLoader.parse(fcm, file: "stockwatch.toml", environment: [:]).channel(named: "phone")?.caFile == "./ca.pem")
        #expect(try ConfigLoader.parse(fcm, file: "/stockwatch.toml", environment: [:]).channel(named: "phone")?.caFile == "/ca.pem")
        let onExec = expectError {
            _ = try ConfigLoader.parse("[channels.page]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\nca_file = \"ca.pem\"\n", file: "c", environment: [:])
        }
        #expect(onExec?.exitStatus == .config)
        #expect(onExec?.message.contains("channels.page.ca_file") == true)
    }

    /// `quiet_hours`: digest by default on fcm, ignore elsewhere; digest only on fcm.
    @Test func quietHoursPolicyIsCheckedWithItsKey() throws {
        let fcm = "[channels.phone]\ntype = \"fcm\"\nservice_account_file = \"/etc/sa.json\"\n"
        let hook = "[channels.hook]\ntype = \"webhook\"\nurl = \"https://x.example\"\nsecret_file = \"/etc/hook.secret\"\n"
        #expect(try ConfigLoader.parse(fcm, file: "c", environment: [:]).channel(named: "phone")?.effectiveQuietHours == .digest)
        #expect(try ConfigLoader.parse(hook, file: "c", environment: [:]).channel(named: "hook")?.effectiveQuietHours == .ignore)
        #expect(try ConfigLoader.parse(hook + "quiet_hours = \"hold\"\n", file: "c", environment: [:]).channel(named: "hook")?.effectiveQuietHours == .hold)
        #expect(try ConfigLoader.parse(fcm + "quiet_hours = \"ignore\"\n", file: "c", environment: [:]).channel(named: "phone")?.honoursQuietHours == false)
        for (text, fragment) in [(hook + "quiet_hours = \"digest\"\n", "only an fcm channel sends digests"), (fcm + "quiet_hours = \"later\"\n", "hold, digest or ignore, got 'later'")] {
            let error = expectError { _ = try ConfigLoader.parse(text, file: "c", environment: [:]) }
            #expect(error?.exitStatus == .config)
            #expect(error?.message.contains("quiet_hours") == true && error?.message.contains(fragment) == true, "\(error?.message ?? "accepted")")
        }
    }

    @Test func worldReadableSecretFileIsRefused() throws {
        let store = try TemporaryStore()
        let key = store.write("fixer.key", "abc123", mode: 0o644)
        let config = try ConfigLoader.parse("[providers.fixer]\napi_key_file = \"\(key)\"\n", file: store.folder + "/c.toml", environment: [:])
        let error = expectError { _ = try ConfigReport.check(config, databasePath: "db", environment: [:]) }
        #expect(error == .insecureFile(path: key, mode: 0o644))
        #expect(error?.message.contains("chmod 600 \(key)") == true)
        #expect(error?.message.contains("abc123") == false)
    }

    @Test func inlineSecretNeedsPrivateConfig() throws {
        let store = try TemporaryStore()
        let text = "[providers.finnhub]\napi_key = \"s3cret\"\n"
        let open = store.write("open.toml", text, mode: 0o644)
        let error = expectError { _ = try ConfigLoader.load(path: open, named: true, environment: [:]) }
        #expect(error?.exitStatus == .config)
        #expect(error?.message.contains("chmod 600") == true)
        #expect(error?.message.contains("s3cret") == false)
        let closed = store.write("closed.toml", text, mode: 0o600)
        let config = try ConfigLoader.load(path: closed, named: true, environment: [:])
        #expect(try SecretReader.read(config.providers["finnhub"]!.apiKey!, environment: [:]) == "s3cret")
        #expect(!"\(config)".contains("s3cret"))
    }

    @Test func secretFromEnvironment() throws {
        let env = ["STOCKWATCH_FIXER_API_KEY": "k"]
        let config = try ConfigLoader.parse("[providers.fixer]\n", file: "c", environment: env)
        #expect(config.providers["fixer"]?.apiKey == .environment("STOCKWATCH_FIXER_API_KEY"))
        let noKey = try ConfigLoader.parse("[providers.fixer]\n", file: "c", environment: [:])
        #expect(expectError { _ = try ConfigReport.check(noKey, databasePath: "db", environment: [:]) }?.exitStatus == .config)
    }

    @Test func paths() {
        let env = ["HOME": "/home/a", "XDG_STATE_HOME": "/state"]
        #expect(Paths.databasePath(explicit: "/x.db", environment: env) == "/x.db")
        #expect(Paths.databasePath(explicit: nil, environment: env.merging(["STOCKWATCH_DB": "/env.db"]) { $1 }) == "/env.db")
        #expect(Paths.databasePath(explicit: nil, environment: env) == "/state/stockwatch/stockwatch.db")
        #expect(Paths.databasePath(explicit: nil, environment: ["HOME": "/home/a"]) == "/home/a/.local/state/stockwatch/stockwatch.db")
        #expect(Paths.configPath(explicit: nil, environment: ["HOME": "/home/a"]) == ("/home/a/.config/stockwatch/config.toml", false))
        #expect(Paths.configPath(explicit: nil, environment: ["STOCKWATCH_CONFIG": "/c"]) == ("/c", true))
    }
}
