import Foundation
import Testing
@testable import StockwatchCore
@testable import StockwatchServer

/// Issue 20, item 6: an exec program gets PATH and LANG only, never our STOCKWATCH_* secrets.
@Suite struct ExecEnvironmentTests {
    @Test func anExecProgramGetsOnlyTheDocumentedEnvironment() async throws {
        // In this process's own environment, as an operator's key would be.
        setenv("STOCKWATCH_FINNHUB_KEY_EXEC_TEST", "secret-from-the-environment", 1)
        var fixture = try NotifyFixture()
        let out = fixture.store.folder + "/env.txt"
        let dump = fixture.store.write("dump.sh", "#!/bin/sh\nexec /usr/bin/env > '\(out)'\n", mode: 0o700)
        var channel = ChannelConfig(name: "dump", type: .exec)
        channel.command = [dump]
        channel.timeoutSeconds = 5
        fixture.config.channels["dump"] = channel
        try fixture.notifications(1, user: try fixture.user("alice"), channels: ["dump"])
        let report = try await fixture.service().run()
        #expect(report.deliveries.map(\.status) == [.sent])
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(!text.contains("STOCKWATCH_"))
        #expect(!text.contains("secret-from-the-environment"))
        var variables: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            variables[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        // What sh itself adds is not ours.
        for own in ["PWD", "OLDPWD", "SHLVL", "_"] { variables[own] = nil }
        #expect(variables == ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"])
    }
}
