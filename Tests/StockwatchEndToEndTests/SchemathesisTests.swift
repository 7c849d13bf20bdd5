import Foundation
import Testing

/// Issue 14, item 5: schemathesis (every check, a fixed seed, a bounded number of
/// examples per operation) against a live `serve`: openapi.yaml says exactly what the
/// server accepts and answers. Its checks of response bodies replace the hand-written
/// ones this suite had for each route; the Swift validator stays for the stream's messages.
///
/// schemathesis comes from `.venv-test` (Scripts/test-python creates it). Without it the
/// test is skipped with that reason, unless STOCKWATCH_REQUIRE_SCHEMATHESIS=1 (.ci/run
/// sets it), where a missing tool is a failure.
@Suite(.serialized) struct SchemathesisTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tool = root.appendingPathComponent(".venv-test/bin/schemathesis").path
    static let required = ProcessInfo.processInfo.environment["STOCKWATCH_REQUIRE_SCHEMATHESIS"] == "1"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: tool) || required,
                   "schemathesis is not installed: run Scripts/test-python -c '' once to create .venv-test"))
    func everyOperationConformsToOpenAPIUnderGeneratedRequests() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.tool), "schemathesis missing at \(Self.tool)")
        let sandbox = try Sandbox()
        let token = try sandbox.addUser("alice")
        // Limits high enough that generated writes are judged on their shape; the limits
        // themselves are tested in ServeLimitsTests.
        sandbox.writeConfig("""
            [serve]
            writes_per_minute = 100000
            max_alerts_per_user = 100000
            max_devices_per_user = 1000
            """)
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.tool)
        process.arguments = [
            "--config-file", Self.root.appendingPathComponent("Tests/API/schemathesis.toml").path,
            "--no-color", "run", Self.root.appendingPathComponent("openapi.yaml").path,
            "--url", "http://127.0.0.1:\(server.port)",
            "--checks", "all", "--seed", "1", "--max-examples", "50",
            "--generation-database", "none", "--workers", "1",
            "--header", "Authorization: Bearer \(token)",
        ]
        let output = sandbox.folder + "/schemathesis.out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        process.currentDirectoryURL = URL(fileURLWithPath: sandbox.folder)
        try process.run()
        process.waitUntilExit()
        try handle.close()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let summary = text.split(separator: "\n").suffix(40).joined(separator: "\n")
        #expect(process.terminationStatus == 0, "schemathesis failed:\n\(summary)")
        #expect(text.contains(" passed"), "no test case ran:\n\(summary)")
        // The server logged no crash and is still answering.
        #expect(try await server.request("GET", "/healthz").status == 200)
    }
}
