import Foundation
import Testing
import TestSupport

/// `notify --follow` and several notify workers at once, through the built binary, on
/// each backend (PostgreSQL when PGHOST is set): a worker delivers what is committed while
/// it sleeps (PostgreSQL wakes it, SQLite's poll finds it), workers never send a delivery
/// twice, and SIGTERM ends one with exit 0.
@Suite struct NotifyFollowTests {
    static let backends = BackendEndToEndTests.backends

    /// A sandbox on `backend` with a webhook channel `hook` to `receiver` (the default),
    /// and `alerts` alerts on AAPL that fire on every quote above 200.
    static func sandbox(_ backend: String, _ receiver: FakeWebhookReceiver, alerts: Int) throws -> Sandbox {
        let sandbox = try NotifyCommandTests.webhookSandbox(receiver, backend: backend)
        let lines = (0..<alerts).map { _ in #"{"symbol": "AAPL", "condition": {"kind": "above", "value": 200}, "trigger": "every"}"# }
        let imported = try sandbox.run(["alert", "import", "-"], stdin: lines.joined(separator: "\n") + "\n")
        guard imported.status == 0 else { throw TestFailure("alert import: \(imported.stderr)") }
        return sandbox
    }

    /// A new AAPL quote above 200 observed `ago` seconds back (each a new quote), judged:
    /// one new delivery per alert committed.
    static func fire(_ sandbox: Sandbox, price: Double, ago: Int) throws {
        let observed = Int(Date().timeIntervalSince1970) - ago
        #expect(try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,\(price),\(observed)\n").status == 0)
        let evaluated = try sandbox.run(["evaluate"])
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
    }

    /// SIGTERM, then up to 10 s for it to end; a worker still running then is killed
    /// and the test fails (a hung worker must fail the test, not hang it).
    static func stop(_ worker: Sandbox.Running) throws -> Sandbox.Result {
        kill(worker.process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while worker.process.isRunning, Date() < deadline { usleep(20_000) }
        if worker.process.isRunning {
            Issue.record("the worker did not stop within 10 s of SIGTERM")
            kill(worker.process.processIdentifier, SIGKILL)
        }
        return try worker.finish()
    }

    @Test(arguments: backends)
    func aFollowingWorkerDeliversWhatIsCommittedWhileItSleepsAndStopsOnSIGTERM(_ backend: String) async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        let sandbox = try Self.sandbox(backend, receiver, alerts: 1)
        // On PostgreSQL a minute's poll: only the wake-up can deliver within the wait below.
        let worker = try sandbox.start(["notify", "--follow", "--json"] + (backend == "postgresql" ? ["--poll", "60s"] : []))
        try Self.fire(sandbox, price: 201, ago: 20)
        #expect(await receiver.waitForRequests(count: 1, timeout: .seconds(10)), "\(backend)")
        try Self.fire(sandbox, price: 202, ago: 10)
        #expect(await receiver.waitForRequests(count: 2, timeout: .seconds(10)), "\(backend)")

        let stopped = try Self.stop(worker)
        #expect(stopped.status == 0, "\(backend): \(stopped.stderr)")
        // One JSON report per pass that delivered something (NDJSON).
        let passes = stopped.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(passes.count == stopped.stdout.split(separator: "\n").count)
        let delivered = passes.flatMap { $0["deliveries"] as? [[String: Any]] ?? [] }
        #expect(delivered.map { $0["status"] as? String } == ["sent", "sent"], "\(backend): \(stopped.stdout)")
        #expect(Set(receiver.received.map(\.webhookID)).count == 2)
        await receiver.stop()
    }

    /// The listening connection dropped (the server restarted, a proxy timed out): the
    /// worker listens again and catches up with what was committed meanwhile.
    @Test(.enabled(if: PostgresCommandTests.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func aWorkerWhoseListenerIsCutOffListensAgainAndCatchesUp() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        let sandbox = try Self.sandbox("postgresql", receiver, alerts: 1)
        let worker = try sandbox.start(["notify", "--follow", "--poll", "60s"])
        try Self.fire(sandbox, price: 201, ago: 20)
        #expect(await receiver.waitForRequests(count: 1, timeout: .seconds(10)))
        let database = try #require(sandbox.postgres?.name)
        let cut = try Self.psqlValue(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(database)' AND query LIKE 'LISTEN%'")
        #expect(cut == "1")
        try Self.fire(sandbox, price: 202, ago: 10)
        #expect(await receiver.waitForRequests(count: 2, timeout: .seconds(10)))
        let stopped = try Self.stop(worker)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        await receiver.stop()
    }

    /// Three following workers and a one-shot notify on the same queue: every delivery
    /// is sent once, by one of them.
    @Test(arguments: backends)
    func severalWorkersSendEachDeliveryOnce(_ backend: String) async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        let sandbox = try Self.sandbox(backend, receiver, alerts: 200)
        let workers = try (0..<3).map { _ in try sandbox.start(["notify", "--follow"]) }
        try Self.fire(sandbox, price: 201, ago: 20)
        let once = try sandbox.start(["notify"])
        try Self.fire(sandbox, price: 202, ago: 10)
        #expect(await receiver.waitForRequests(count: 400, timeout: .seconds(30)), "\(backend): \(receiver.received.count)")
        let results = try workers.map(Self.stop) + [try once.finish()]
        #expect(results.allSatisfy { $0.status == 0 }, "\(backend): \(results.map(\.stderr))")
        #expect(receiver.received.count == 400, "\(backend)")
        #expect(Set(receiver.received.map(\.webhookID)).count == 400, "\(backend)")
        await receiver.stop()
    }

    /// One push per round, each read of the cached FCM access token a synchronous store
    /// call inside a send: a worker once hung within a few rounds when an outcome write's
    /// continuation was queued on the very thread such a call was blocking.
    @Test(.enabled(if: PostgresCommandTests.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
    func aFollowingWorkerPushesToFCMRoundAfterRound() async throws {
        let fcm = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        let sandbox = try NotifyCommandTests.fcmSandbox(fcm, backend: "postgresql")
        #expect(try sandbox.run(["user", "add", "alice"]).status == 0)
        #expect(try sandbox.run(["device", "add", "--user", "alice", "--fcm-token", "tok-alice"]).status == 0)
        #expect(try sandbox.run(["alert", "add", "AAPL", "--user", "alice", "--above", "200", "--trigger", "every"]).status == 0)
        let worker = try sandbox.start(["notify", "--follow", "--poll", "60s"])
        let rounds = 20
        for round in 1...rounds {
            try Self.fire(sandbox, price: 201, ago: 100 - round)
            guard await fcm.waitForMessages(count: round, timeout: .seconds(10)) else {
                Issue.record("round \(round): the push did not arrive")
                break
            }
        }
        let stopped = try Self.stop(worker)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(fcm.messages.count == rounds)
        await fcm.stop()
    }

    /// One value from psql on the test server.
    static func psqlValue(_ sql: String) throws -> String {
        let process = Process(), output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql]
        process.environment = PostgresCommandTests.server.merging(["PATH": "/usr/bin:/bin"]) { $1 }
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A broken channel is a mistake a restart cannot fix: the worker exits 78 with
    /// one line naming it, and the channel's deliveries stay pending.
    @Test func aBrokenChannelEndsTheWorkerWith78() throws {
        let sandbox = try Sandbox()
        try NotifyCommandTests.pending(sandbox, count: 2, channel: "pager")
        let worker = try sandbox.start(["notify", "--follow"])
        let deadline = Date().addingTimeInterval(10)
        while worker.process.isRunning, Date() < deadline { usleep(20_000) }
        let result = try Self.stop(worker)
        #expect(result.status == 78)
        #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains("'pager'"), "\(result.stderr)")
        #expect(try NotifyCommandTests.statuses(sandbox) == ["pending": 2])
    }

    @Test func pollWithoutFollowIsAUsageError() throws {
        let sandbox = try Sandbox()
        let result = try sandbox.run(["notify", "--poll", "5s"])
        #expect(result.status == 64)
        #expect(result.stderr == "stockwatch: error: --poll needs --follow\n")
        let bad = try sandbox.run(["notify", "--follow", "--poll", "soon"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--poll"))
    }
}
