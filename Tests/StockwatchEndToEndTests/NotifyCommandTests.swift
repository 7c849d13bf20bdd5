import Foundation
import GRDB
import Testing
import TestSupport

/// notify, tick, status and demo through the built binary, against fakes on 127.0.0.1.
@Suite struct NotifyCommandTests {
    /// A sandbox whose config has a webhook channel `hook` pointing at `receiver`.
    static func webhookSandbox(_ receiver: FakeWebhookReceiver, timeout: String = "5s", lease: String = "60s", backend: String = "sqlite") throws -> Sandbox {
        let sandbox = try Sandbox(backend: backend)
        let secret = sandbox.write("config/stockwatch/hook.secret", receiver.secret)
        sandbox.write("config/stockwatch/config.toml", """
            [alerts]
            default_notify = "hook"
            [channels.hook]
            type = "webhook"
            url = "\(receiver.url)"
            secret_file = "\(secret)"
            timeout = "\(timeout)"
            [notify]
            lease = "\(lease)"
            # A send that times out under a loaded machine is due again by the next run.
            backoff_base = "1s"
            backoff_cap = "1s"
            """)
        return sandbox
    }

    /// A sandbox whose config's default channel is `phone`, FCM to `fake`.
    /// `channelKeys`: more lines of the phone channel's table.
    static func fcmSandbox(_ fake: FakeFCM, backend: String = "sqlite", channelKeys: String = "") throws -> Sandbox {
        let sandbox = try Sandbox(backend: backend)
        sandbox.write("config/stockwatch/config.toml", """
            [alerts]
            default_notify = "phone"
            [channels.phone]
            type = "fcm"
            service_account_file = "firebase.json"
            api_base_url = "\(fake.baseURL)"
            \(channelKeys)
            """)
        try fake.account.write(to: sandbox.folder + "/config/stockwatch/firebase.json", tokenURI: fake.tokenURI)
        return sandbox
    }

    /// `count` notifications for alice, each with one pending delivery on `channel`.
    static func pending(_ sandbox: Sandbox, count: Int, channel: String, addUser: Bool = true) throws {
        if addUser { try sandbox.run(["user", "add", "alice"]) }
        let queue = try DatabaseQueue(path: sandbox.db)
        try queue.write { db in
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for _ in 0..<count {
                try db.execute(
                    sql: "INSERT INTO notifications (user_id, symbol, price, observed_at, message, created_at) VALUES (1, 'AAPL', 201.35, ?, 'AAPL crossed above 200.00 at 201.35', ?)",
                    arguments: [now, now])
                try db.execute(
                    sql: "INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, 'pending', 0, ?, ?, ?)",
                    arguments: [db.lastInsertedRowID, channel, now, now, now])
            }
        }
    }

    static func statuses(_ sandbox: Sandbox) throws -> [String: Int] {
        try DatabaseQueue(path: sandbox.db).read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT status, count(*) AS n FROM deliveries GROUP BY status").map { ($0["status"], $0["n"]) })
        }
    }

    @Test func theWholePipelineIsQuietAndJSONHasTheDocumentedKeys() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        let sandbox = try Self.webhookSandbox(receiver)
        try sandbox.run(["alert", "add", "AAPL", "--above", "200", "--trigger", "every"])
        try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,201.35,\(Int(Date().timeIntervalSince1970) - 5)\n")
        try sandbox.run(["evaluate"])
        let json = try sandbox.run(["notify", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let deliveries = try #require((try json.json() as? [String: Any])?["deliveries"] as? [[String: Any]])
        #expect(deliveries.count == 1)
        #expect(Set(deliveries[0].keys) == ["id", "notification_id", "channel", "target", "status", "attempts", "error"])
        #expect(deliveries[0]["status"] as? String == "sent")
        #expect(receiver.received.count == 1 && receiver.badSignatureCount == 0)

        // a receiver error: exit 75, one line on stderr naming the delivery and the cause
        receiver.behaviour = { _, _ in .status(503) }
        try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,202,\(Int(Date().timeIntervalSince1970) - 1)\n")
        try sandbox.run(["evaluate"])
        let failing = try sandbox.run(["notify"])
        #expect(failing.status == 75)
        #expect(failing.stdout.isEmpty)
        #expect(failing.stderr.hasPrefix("stockwatch: error: delivery 2 of notification 2 via hook: retry after attempt 1: webhook: HTTP 503"))
        #expect(failing.stderr.split(separator: "\n").count == 1)
        await receiver.stop()
    }

    @Test func aChannelMissingFromTheConfigExits78AndKeepsItsDeliveries() throws {
        let sandbox = try Sandbox()
        try Self.pending(sandbox, count: 2, channel: "pager")
        let result = try sandbox.run(["notify"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("'pager'"))
        #expect(try Self.statuses(sandbox) == ["pending": 2])
    }

    @Test func twoNotifyProcessesAtOnceSendEachDeliveryOnce() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        let sandbox = try Self.webhookSandbox(receiver)
        try Self.pending(sandbox, count: 300, channel: "hook")
        let runs = try (0..<2).map { _ in try sandbox.start(["notify"]) }
        let results = try runs.map { try $0.finish() }
        #expect(results.map(\.status) == [0, 0], "\(results.map(\.stderr))")
        #expect(receiver.received.count == 300)
        #expect(Set(receiver.received.map(\.webhookID)).count == 300)
        #expect(try Self.statuses(sandbox) == ["sent": 300])
        await receiver.stop()
    }

    /// One claim of 32 deliveries, sent one at a time by a receiver that takes 0.5 s each,
    /// takes 16 s against an 11 s lease: the claimer renews what it has not started, so
    /// a second process started after the first lease would have ended finds nothing of
    /// it to take, and no delivery is sent twice.
    @Test func aClaimOutlastingItsFirstLeaseIsRenewedNotSentTwice() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        receiver.behaviour = { _, _ in .delayed(200, milliseconds: 500) }
        let sandbox = try Self.webhookSandbox(receiver, timeout: "1s", lease: "11s")
        let config = sandbox.folder + "/config/stockwatch/config.toml"
        try (String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "[notify]\n", with: "[notify]\nconcurrency = 1\n"))
            .write(toFile: config, atomically: true, encoding: .utf8)
        try Self.pending(sandbox, count: 40, channel: "hook")
        let first = try sandbox.start(["notify"])
        // 12 s: past the first claim's original lease, with about 8 of its 32 not yet sent.
        #expect(await receiver.waitForRequests(count: 22, timeout: .seconds(30)))
        try await Task.sleep(for: .seconds(1))
        let second = try sandbox.run(["notify"])
        let firstResult = try first.finish()
        #expect(firstResult.status == 0, "\(firstResult.stderr)")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(receiver.acceptedCounts.values.allSatisfy { $0 == 1 }, "\(receiver.acceptedCounts.filter { $0.value > 1 })")
        #expect(receiver.acceptedCounts.count == 40)
        #expect(try Self.statuses(sandbox) == ["sent": 40])
        await receiver.stop()
    }

    @Test func aNotifyKilledDuringSendsLosesNothing() async throws {
        let receiver = try await FakeWebhookReceiver(secret: FakeWebhookReceiver.makeSecret())
        // the first 40 are answered; then the receiver stalls, and the run is killed mid-send
        receiver.behaviour = { id, _ in Int(id)! <= 40 ? .status(200) : .hang }
        let sandbox = try Self.webhookSandbox(receiver, timeout: "5s", lease: "15s")
        try Self.pending(sandbox, count: 200, channel: "hook")
        let run = try sandbox.start(["notify"])
        #expect(await receiver.waitForRequests(count: 50, timeout: .seconds(20)))
        // The answered sends' outcomes are written while the others hang.
        #expect(await waitUntil(timeout: .seconds(4)) { ((try? Self.statuses(sandbox)) ?? [:])["sent"] == 40 })
        kill(run.process.processIdentifier, SIGKILL)
        let killed = try run.finish()
        #expect(killed.status == SIGKILL)

        receiver.behaviour = { _, _ in .status(200) }
        // the unclaimed ones go at once; the killed run's claims once their lease ends
        #expect(try sandbox.run(["notify"]).status == 0)
        try await Task.sleep(for: .seconds(16))
        let last = try sandbox.run(["notify"])
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try Self.statuses(sandbox) == ["sent": 200])
        let ids = receiver.received.map(\.webhookID)
        #expect(Set(ids) == Set((1...200).map(String.init)))  // none lost
        // duplicates only for what the killed run had in flight: [notify] concurrency
        let counts = Dictionary(grouping: ids, by: { $0 }).mapValues(\.count)
        #expect(counts.values.allSatisfy { $0 <= 2 })
        #expect(counts.values.filter { $0 == 2 }.count <= 64)
        await receiver.stop()
    }

    /// The push the fake FCM received expires after the channel's ttl, collapses per alert
    /// and groups per symbol, with the app's category for its buttons.
    @Test func aPushCarriesItsExpiryCollapseKeyAndGroup() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        let sandbox = try Self.fcmSandbox(fake, channelKeys: "ttl = \"10m\"\nclick_action = \"PRICE_ALERT\"")
        try sandbox.run(["user", "add", "alice"])
        try sandbox.run(["device", "add", "--user", "alice", "--fcm-token", "tok-a"])
        let alert = try #require((try sandbox.run(["alert", "add", "AAPL", "--above", "200", "--user", "alice", "--json"]).json() as? [String: Any])?["id"] as? Int)
        try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,201.35,\(Int(Date().timeIntervalSince1970) - 5)\n")
        try sandbox.run(["evaluate"])
        let sent = Int(Date().timeIntervalSince1970)
        #expect(try sandbox.run(["notify"]).status == 0)
        let push = try #require(fake.messages.first?.push)
        #expect(fake.rejections.isEmpty, "\(fake.rejections)")
        #expect(push.ttl == "600s")
        let expiration = try #require(push.apnsExpiration.flatMap { Int($0) })
        #expect((sent + 600 - 5...sent + 600 + 60).contains(expiration))
        #expect(push.collapseKey == "alert-\(alert)" && push.apnsCollapseID == "alert-\(alert)")
        #expect(push.tag == "AAPL" && push.threadID == "AAPL")
        #expect(push.clickAction == "PRICE_ALERT" && push.category == "PRICE_ALERT")
        await fake.stop()
    }

    /// Through the binary: while it is quiet on alice's clock notify holds her pushes
    /// (exit 0, `held` in --json); when she turns quiet hours off (as her app would with
    /// PATCH /v1/me) the next notify sends one digest to her phone, with the unread badge.
    @Test func aHeldPushGoesOutAsADigestWhenQuietHoursEnd() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        let sandbox = try Self.fcmSandbox(fake)
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let clock = utc.dateComponents([.hour, .minute], from: Date())
        let minute = clock.hour! * 60 + clock.minute!
        let quiet = String(format: "%02d:%02d-%02d:%02d", (minute + 1380) % 1440 / 60, (minute + 1380) % 60, (minute + 60) % 1440 / 60, (minute + 60) % 60)
        try sandbox.run(["user", "add", "alice", "--timezone", "UTC", "--quiet", quiet])
        try sandbox.run(["device", "add", "--user", "alice", "--fcm-token", "tok-a"])
        for level in ["200", "201"] { try sandbox.run(["alert", "add", "AAPL", "--above", level, "--user", "alice"]) }
        try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,205,\(Int(Date().timeIntervalSince1970) - 5)\n")
        try sandbox.run(["evaluate"])
        let night = try sandbox.run(["notify", "--json"])
        #expect(night.status == 0 && night.stdout.isEmpty == false)
        #expect((try night.json() as? [String: Any])?["held"] as? Int == 2)
        #expect(fake.messages.isEmpty)
        #expect(try sandbox.run(["history"]).stdout.contains("phone:pending"))

        try sandbox.run(["user", "set", "alice", "--quiet", "off"])
        #expect(try sandbox.run(["notify"]).status == 0)
        #expect(fake.rejections.isEmpty, "\(fake.rejections)")
        let digest = try #require(fake.messages.first)
        #expect(fake.messages.count == 1)
        #expect(digest.data["type"] == "digest" && digest.data["count"] == "2" && digest.data["notification_ids"]?.split(separator: ",").count == 2)
        #expect(digest.title == "2 alerts during your quiet hours")
        #expect(digest.push.badge == 2)
        #expect(try sandbox.run(["history"]).stdout.components(separatedBy: "phone:sent").count == 3)
        await fake.stop()
    }

    @Test func theFCMAccessTokenIsCachedAcrossProcesses() async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        let sandbox = try Self.fcmSandbox(fake)
        try Self.pending(sandbox, count: 1, channel: "phone")
        try sandbox.run(["device", "add", "--user", "alice", "--fcm-token", "tok-a"])
        #expect(try sandbox.run(["notify"]).status == 0)
        try Self.pending(sandbox, count: 1, channel: "phone", addUser: false)
        #expect(try sandbox.run(["notify"]).status == 0)
        #expect(fake.messageCount == 2)
        #expect(fake.tokenRequests == 1)
        let status = try #require(try sandbox.run(["status", "--json"]).json() as? [String: Any])
        let fcm = try #require((status["fcm"] as? [[String: Any]])?.first)
        #expect(fcm["account"] as? String == fake.account.clientEmail)
        #expect(fcm["token_expires_at"] is String)
        await fake.stop()
    }

    @Test func aSecondTickExits75WhileTheFirstHoldsTheLock() throws {
        let sandbox = try Sandbox()
        try sandbox.run(["user", "add", "alice"])  // creates the database
        let fd = open(sandbox.db + ".tick-lock", O_CREAT | O_RDWR, 0o600)
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let refused = try sandbox.run(["tick"])
        #expect(refused.status == 75)
        #expect(refused.stderr.hasPrefix("stockwatch: error: another tick is still running"))
        #expect(refused.stderr.split(separator: "\n").count == 1)
        close(fd)

        try sandbox.run(["alert", "add", "AAPL", "--user", "alice", "--above", "200"])
        let tick = try sandbox.run(["tick", "--from", "-"], stdin: "AAPL,201.35,\(Int(Date().timeIntervalSince1970) - 5)\n")
        #expect(tick.status == 0, "\(tick.stderr)")
        #expect(tick.stdout.contains("alice: AAPL is at or above 200.00 at 201.35 (notification 1)"))
        #expect(try Self.statuses(sandbox) == ["sent": 1])
    }

    @Test func statusExits0WhenHealthyAnd1WhenSomethingNeedsAttention() throws {
        let sandbox = try Sandbox()
        let healthy = try sandbox.run(["status", "--json"])
        #expect(healthy.status == 0)
        let report = try #require(try healthy.json() as? [String: Any])
        #expect(report["healthy"] as? Bool == true)
        #expect(Set(report.keys) == ["healthy", "problems", "providers", "stale_symbols", "deliveries", "recent_errors", "fcm", "database"])
        #expect((report["deliveries"] as? [String: Int])?["dead"] == 0)

        try sandbox.run(["alert", "add", "AAPL", "--above", "200"])
        let stale = try sandbox.run(["status"])
        #expect(stale.status == 1)
        #expect(stale.stdout.contains("symbol AAPL: no quote yet"))
    }

    @Test func theDemoRunsOfflineAndSaysWhatToTryNext() throws {
        let sandbox = try Sandbox()
        let demo = try sandbox.run(["demo"], extraEnvironment: ["TMPDIR": sandbox.folder])
        #expect(demo.status == 0, "\(demo.stderr)")
        #expect(demo.stdout.contains("crossed above 200.00"))
        #expect(demo.stdout.contains("6 notifications delivered"))
        let path = try #require(demo.stdout.split(separator: "\n").first { $0.hasPrefix("A temporary database: ") }).dropFirst("A temporary database: ".count)
        #expect(path.hasPrefix(sandbox.folder))
        let history = try sandbox.run(["history", "--db", String(path), "--json"])
        #expect((try history.json() as? [Any])?.count == 6)
        #expect(!FileManager.default.fileExists(atPath: sandbox.db))  // the user's own database is untouched
    }
}
