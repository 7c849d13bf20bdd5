import Foundation
import Testing

@Suite struct ConfigCommandTests {
    @Test func unknownKeyIsAConfigErrorWithLineAndNoDatabase() throws {
        let sandbox = try Sandbox()
        let config = sandbox.write("config/stockwatch/config.toml", "[alerts]\ndefault_notify = \"stdout\"\ndefault_notfy = \"x\"\n")
        let result = try sandbox.run(["alert", "add", "AAPL", "--above", "1"])
        #expect(result.status == 78)
        #expect(result.stderr == "stockwatch: error: \(config):3: key 'alerts.default_notfy': unknown key in [alerts] (known: default_notify)\n")
        #expect(!FileManager.default.fileExists(atPath: sandbox.db))
    }

    @Test func missingNamedConfigIsAnError() throws {
        let sandbox = try Sandbox()
        let result = try sandbox.run(["alert", "list", "--config", sandbox.folder + "/nope.toml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("nope.toml: file not found"))
        let viaEnvironment = try sandbox.run(["alert", "list"], extraEnvironment: ["STOCKWATCH_CONFIG": sandbox.folder + "/env.toml"])
        #expect(viaEnvironment.stderr.contains("env.toml: file not found"))
    }

    @Test func checkMasksSecretsAndRefusesReadableOnes() throws {
        let sandbox = try Sandbox()
        let key = sandbox.write("keys/fixer", "TOPSECRETKEY\n", mode: 0o600)
        let hook = sandbox.write("keys/hook", "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n", mode: 0o600)
        let config = sandbox.write("config/stockwatch/config.toml", """
            [alerts]
            default_notify = ["ops"]

            [channels.ops]
            type = "webhook"
            url = "https://hooks.example.com/stockwatch"
            secret_file = "\(hook)"

            [providers.fixer]
            api_key_file = "\(key)"

            [providers.finnhub]
            """, mode: 0o644)
        let env = ["STOCKWATCH_FINNHUB_API_KEY": "ENVSECRET"]
        let check = try sandbox.run(["config", "check", "--json"], extraEnvironment: env)
        #expect(check.status == 0, "\(check.stderr)")
        #expect(!check.stdout.contains("TOPSECRETKEY") && !check.stdout.contains("ENVSECRET") && !check.stdout.contains("whsec_"))
        let report = try #require(try check.json() as? [String: Any])
        #expect(report["file"] as? String == config)
        #expect(report["default_notify"] as? [String] == ["ops"])
        let providers = try #require(report["providers"] as? [[String: Any]])
        #expect(providers.map { $0["api_key"] as? String } == ["(from environment STOCKWATCH_FINNHUB_API_KEY)", "(from file \(key))"])
        #expect((report["serve"] as? [String: Any])?["listen"] as? String == "127.0.0.1:8080")
        let text = try sandbox.run(["config", "check"], extraEnvironment: env).stdout
        #expect(text.contains("channels.ops"))
        #expect(text.contains("serve.allowed_origins"))

        // The default channel now comes from config.
        let added = try sandbox.run(["alert", "add", "AAPL", "--above", "1", "--json"], extraEnvironment: env)
        #expect((try added.json() as? [String: Any])?["channels"] as? [String] == ["ops"])

        chmod(key, 0o644)
        let insecure = try sandbox.run(["config", "check"], extraEnvironment: env)
        #expect(insecure.status == 78)
        #expect(insecure.stderr == "stockwatch: error: \(key) is readable by group or others (mode 644); run 'chmod 600 \(key)'\n")

        try FileManager.default.removeItem(atPath: key)
        let missing = try sandbox.run(["config", "check"], extraEnvironment: env)
        #expect(missing.status == 78)
        #expect(missing.stderr.contains(key))

        let noKey = try sandbox.run(["config", "check"])
        #expect(noKey.status == 78)
    }

    @Test func inlineSecretInReadableConfigIsRefused() throws {
        let sandbox = try Sandbox()
        let config = sandbox.write("config/stockwatch/config.toml", "[providers.finnhub]\napi_key = \"INLINESECRET\"\n", mode: 0o640)
        let result = try sandbox.run(["config", "check"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("chmod 600 \(config)"))
        #expect(!result.stderr.contains("INLINESECRET"))
        chmod(config, 0o600)
        let fixed = try sandbox.run(["config", "check"])
        #expect(fixed.status == 0)
        #expect(fixed.stdout.contains("(inline, ********)") && !fixed.stdout.contains("INLINESECRET"))
    }

    /// config check makes the checks notify makes before it sends, so a config that
    /// passes it never makes notify exit 78.
    @Test(arguments: [
        ("webhook", "secret_file = \"SECRET\"\nurl = \"https://hooks.example.com/x\"", "must be written whsec_"),
        ("fcm", "service_account_file = \"ACCOUNT\"", "private_key': is not a PEM RSA private key"),
        ("exec", "command = [\"/nonexistent/page-oncall\"]", "/nonexistent/page-oncall is not an executable file"),
    ])
    func checkFindsWhatNotifyWouldRefuse(type: String, keys: String, message: String) throws {
        let sandbox = try Sandbox()
        let secret = sandbox.write("keys/hook", "not-a-whsec-secret\n", mode: 0o600)
        let account = sandbox.write("keys/firebase.json", #"{"type":"service_account","project_id":"p","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}"#, mode: 0o600)
        _ = sandbox.write("config/stockwatch/config.toml", """
            [channels.broken]
            type = "\(type)"
            \(keys.replacingOccurrences(of: "SECRET", with: secret).replacingOccurrences(of: "ACCOUNT", with: account))
            """)
        let check = try sandbox.run(["config", "check"])
        #expect(check.status == 78)
        #expect(check.stderr.contains(message), "\(check.stderr)")
        #expect(check.stderr.split(separator: "\n").count == 1)
    }
}
