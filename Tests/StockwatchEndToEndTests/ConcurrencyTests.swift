import Foundation
import Testing
import TestSupport

@Suite struct ConcurrencyTests {
    /// Two processes adding alerts at the same moment, on a database neither has created yet.
    @Test func twoProcessesAddingAtOnceBothSucceed() throws {
        let sandbox = try Sandbox()
        let perProcess = 15
        // Each process adds many alerts back to back, so their transactions overlap.
        let runners = try (0..<2).map { worker in
            try sandbox.start(["alert", "import", "-"], stdin: (1...perProcess).map {
                #"{"symbol":"AAPL","condition":{"kind":"above","value":\#(worker * 100 + $0)}}"#
            }.joined(separator: "\n"))
        }
        var adders: [Sandbox.Running] = []
        for index in 0..<8 { adders.append(try sandbox.start(["alert", "add", "MSFT", "--above", "\(index + 1)"])) }
        for running in runners + adders {
            let result = try running.finish()
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(!result.stderr.contains("locked"))
        }
        #expect(try sandbox.count("alerts") == 2 * perProcess + 8)
        #expect(try sandbox.count("users") == 1)
    }

    /// A new file is switched to WAL mode by its first writer, which needs the only lock on
    /// it; processes opening it meanwhile got SQLITE_BUSY at once, with no busy timeout (the
    /// test above failed so on a loaded machine). They now take turns on the sidecar lock
    /// until the switch and the migrations are done: while another holds the turn, a
    /// process opening a new database waits and writes nothing, then succeeds.
    @Test func aProcessOpeningANewDatabaseWaitsItsTurnToSetItUp() async throws {
        let sandbox = try Sandbox()
        let path = sandbox.db
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let turn = open(path + ".migrate-lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        #expect(turn >= 0 && flock(turn, LOCK_EX) == 0)
        var lockFile = stat()
        fstat(turn, &lockFile)
        let adding = try sandbox.start(["alert", "add", "MSFT", "--above", "1"])
        // /proc/locks lists a request blocked on a lock with "->", and the file by its inode.
        let waits = await waitUntil(timeout: .seconds(20)) {
            let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
            return locks.split(separator: "\n").contains { $0.contains("-> FLOCK") && $0.hasSuffix(":\(lockFile.st_ino) 0 EOF") }
        }
        #expect(waits)
        #expect(adding.process.isRunning)
        let header = FileManager.default.contents(atPath: path) ?? Data()
        #expect(header.count < 20 || header[18] != 2, "the file was switched to WAL mode out of turn")
        flock(turn, LOCK_UN)
        close(turn)
        let result = try adding.finish()
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(try sandbox.count("alerts") == 1)
    }
}
