import Foundation
import GRDB
import Testing
import TestSupport
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore
@testable import StockwatchServer

/// One user's data never reaches another: ids that are never reused, deliveries bound to
/// their device and its owner, tokens that move without what was waiting for them, and
/// providers' budgets that one user cannot use up.
@Suite struct UserIsolationTests {
    /// alice's phone 2 fails once and waits for its retry; alice removes it; bob registers
    /// a phone. Before the fix bob's phone got device id 2 and alice's notification.
    @Test(arguments: [nil, TemporaryStore.previousSchema])
    func aRemovedPhonesRetryNeverReachesTheNextPhoneRegistered(migratedFrom: String?) async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        fake.behaviour = { token, attempt in token == "tok-a2" && attempt == 1 ? .error(.UNAVAILABLE) : .success }
        var fixture = try NotifyFixture(migratedFrom: migratedFrom)
        try fixture.fcmChannel(fake)
        let devices = DeviceService(database: fixture.database)
        let alice = try UserService(database: fixture.database).add(name: "alice").user
        _ = try UserService(database: fixture.database).add(name: "bob")
        _ = try devices.add(user: "alice", fcmToken: "tok-a1", label: "Pixel")
        let second = try devices.add(user: "alice", fcmToken: "tok-a2", label: "iPad")
        let ids = try fixture.notifications(1, user: alice.id, channels: ["phone"])
        let first = try await fixture.service().run()
        #expect(first.deliveries.map(\.status).sorted { $0.rawValue < $1.rawValue } == [.retry, .sent])

        try devices.remove(id: second.id, ownerID: alice.id)
        let bobs = try devices.add(user: "bob", fcmToken: "tok-b", label: nil)
        #expect(bobs.id > second.id)

        let later = try await fixture.service().run(now: fixture.now.addingTimeInterval(7200))
        #expect(later.deliveries.isEmpty)
        #expect(!fake.messages.contains { $0.deviceToken == "tok-b" })
        let waiting = try #require(try fixture.deliveries().first { $0.target == "device:\(second.id)" })
        #expect(waiting.status == .failed)
        #expect(waiting.lastError == DeliveryReason.deviceGone)
        #expect(waiting.deviceId == nil)  // the foreign key let go of the removed device
        // history keeps the outcome
        let history = try HistoryService(database: fixture.database).notifications(.init())
        #expect(history.first { $0.id == ids[0] }?.deliveries.contains { $0.status == .failed && $0.error == DeliveryReason.deviceGone } == true)
        #expect(try fixture.count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'failed'") == 1)
        await fake.stop()
    }

    /// The same story on a database that today's schema (v5) left behind: the id was
    /// already reused there, so the migration must end the waiting delivery.
    @Test func theMigrationEndsDeliveriesWhoseDeviceIdWasAlreadyReused() async throws {
        let folder = NSTemporaryDirectory() + "stockwatch-core-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/old.db"
        let old = try DatabaseQueue(path: path)
        try AppDatabase.migrator.migrate(old, upTo: "v5-notification-ids-never-reused")
        try await old.write { db in
            try db.execute(sql: """
                INSERT INTO users (id, name, token_hash, created_at) VALUES (1, 'alice', '\(String(repeating: "a", count: 64))', 0), (2, 'bob', '\(String(repeating: "b", count: 64))', 0);
                INSERT INTO devices (id, user_id, fcm_token, created_at, updated_at) VALUES (1, 1, 'tok-a1', 0, 0);
                -- alice's device 2 was removed, and bob's phone got its id
                INSERT INTO devices (id, user_id, fcm_token, created_at, updated_at) VALUES (2, 2, 'tok-b', 0, 0);
                -- and so did bob's alert 3, after alice's alert 3 was removed
                INSERT INTO alerts (id, user_id, symbol, kind, value, trigger, channels, created_at) VALUES (3, 2, 'AAPL', 'above', 1, 'rearm', '["phone"]', 0);
                INSERT INTO notifications (id, user_id, symbol, price, observed_at, message, created_at) VALUES (1, 1, 'AAPL', 1, 0, 'alice''s', 0), (2, 1, 'AAPL', 1, 0, 'alice''s', 0);
                INSERT INTO deliveries (id, notification_id, channel, target, status, attempts, next_attempt_at, lease_until, created_at, updated_at)
                    VALUES (1, 1, 'phone', 'device:1', 'retry', 1, 0, NULL, 0, 0), (2, 1, 'phone', 'device:2', 'retry', 1, 0, NULL, 0, 0),
                    -- claimed by a run in flight, and one to alice's removed device 5, above every id left
                    (3, 2, 'phone', 'device:2', 'sending', 2, 0, 9999999999999, 0, 0), (4, 2, 'phone', 'device:5', 'sent', 1, 0, NULL, 0, 0);
                """)
        }
        try old.close()

        let database = try AppDatabase(path: path)
        let rows = try database.read { db in
            try Row.fetchAll(db, sql: "SELECT device_id, status, last_error FROM deliveries ORDER BY id")
                .map { (device: $0["device_id"] as Int64?, status: $0["status"] as String, error: $0["last_error"] as String?) }
        }
        #expect(rows.map(\.device) == [1, nil, nil, nil])
        #expect(rows.map(\.status) == ["retry", "failed", "failed", "sent"])
        #expect(rows[1].error == DeliveryReason.deviceGone && rows[2].error == DeliveryReason.deviceGone)
        let attempts = try database.read { db in
            try Row.fetchAll(db, sql: "SELECT delivery_id, attempt FROM delivery_attempts WHERE outcome = 'failed' ORDER BY delivery_id").map { [$0["delivery_id"] as Int64, $0["attempt"] as Int64] }
        }
        #expect(attempts == [[2, 2], [3, 2]])  // the next attempt of a waiting one, the claimed attempt of one in flight
        // ids kept; no id of users, devices or alerts is handed out again
        try database.write { db in
            try db.execute(sql: "DELETE FROM devices WHERE id = 2; DELETE FROM alerts WHERE id = 3; DELETE FROM users WHERE id = 2")
            try db.execute(sql: "INSERT INTO users (name, token_hash, created_at) VALUES ('carol', '\(String(repeating: "c", count: 64))', 0)")
            #expect(db.lastInsertedRowID == 3)
            try db.execute(sql: "INSERT INTO devices (user_id, fcm_token, created_at, updated_at) VALUES (1, 'tok-a3', 0, 0)")
            #expect(db.lastInsertedRowID == 6)  // past device 5, which the deliveries still name
            try db.execute(sql: "INSERT INTO alerts (user_id, symbol, kind, value, trigger, channels, created_at) VALUES (1, 'AAPL', 'above', 1, 'rearm', '[\"phone\"]', 0)")
            #expect(db.lastInsertedRowID == 4)
        }

        // and notify sends alice's notification to her own phone only
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var config = Config()
        let account = folder + "/sa.json"
        try fake.account.write(to: account, tokenURI: fake.tokenURI)
        var channel = ChannelConfig(name: "phone", type: .fcm)
        channel.serviceAccountFile = account
        channel.apiBaseURL = fake.baseURL
        config.channels["phone"] = channel
        _ = try await NotifyService(database: database, config: config, environment: [:]).run()
        #expect(fake.messages.map(\.deviceToken) == ["tok-a1"])
        await fake.stop()
    }

    /// A token registered by another user becomes that user's new device; what was waiting
    /// for the previous owner is not sent, and the previous label is not shown.
    @Test(arguments: [nil, TemporaryStore.previousSchema])
    func aTokenMovingToAnotherUserCarriesNothingOfThePreviousOwner(migratedFrom: String?) async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        fake.behaviour = { _, attempt in attempt == 1 ? .error(.UNAVAILABLE) : .success }
        var fixture = try NotifyFixture(migratedFrom: migratedFrom)
        try fixture.fcmChannel(fake)
        let users = UserService(database: fixture.database)
        let carol = try users.add(name: "carol").user
        _ = try users.add(name: "dave")
        let devices = DeviceService(database: fixture.database)
        let carols = try devices.add(user: "carol", fcmToken: "shared-phone", label: "Carol's phone")
        try fixture.notifications(1, user: carol.id, channels: ["phone"])
        _ = try await fixture.service().run()  // fanned out to the phone, waiting for a retry

        let daves = try devices.add(user: "dave", fcmToken: "shared-phone", label: nil)
        #expect(daves.user == "dave")
        #expect(daves.id != carols.id)
        #expect(daves.label == nil)
        #expect(try devices.list(user: "carol").isEmpty)
        let report = try await fixture.service().run(now: fixture.now.addingTimeInterval(7200))
        #expect(report.deliveries.isEmpty)
        #expect(fake.messageCount == 0)
        let delivery = try #require(try fixture.deliveries().first)
        #expect(delivery.status == .failed && delivery.lastError == DeliveryReason.deviceMoved)

        // the same user registering again keeps the device (apps send the token on every start)
        #expect(try devices.add(user: "dave", fcmToken: "shared-phone", label: "Dave's").id == daves.id)
        await fake.stop()
    }

    /// A device removed (or its token moved) after its delivery was claimed: the claim
    /// ends at once, the send is not started by a run that checks, and a late outcome is
    /// dropped; one attempt is recorded, as failed.
    @Test(arguments: [false, true])
    func aDeviceRemovedWhileItsDeliveryIsClaimedEndsTheClaim(tokenMoves: Bool) async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture()
        try fixture.fcmChannel(fake)
        let alice = try fixture.user("alice", devices: ["tok-a"])
        _ = try fixture.user("bob")
        try fixture.notifications(1, user: alice, channels: ["phone"])
        let queue = DeliveryQueue(database: fixture.database, settings: fixture.config.notify, fanOutChannels: ["phone"])
        let jobs = try await queue.claim(channels: ["phone"], limit: 10, cutoff: fixture.now, now: fixture.now).jobs
        #expect(jobs.map(\.attempt) == [1])
        #expect(try await queue.renew(jobs[...]) == [jobs[0].deliveryID])

        let devices = DeviceService(database: fixture.database)
        if tokenMoves { _ = try devices.add(user: "bob", fcmToken: "tok-a", label: nil) } else { try devices.remove(id: 1) }
        #expect(try await queue.renew(jobs[...]).isEmpty)
        var random = SystemRandomNumberGenerator()
        #expect(try await queue.record([(jobs[0], .sent)], random: &random).isEmpty)
        let delivery = try #require(try fixture.deliveries().first)
        #expect(delivery.status == .failed && delivery.attempts == 1)
        #expect(delivery.lastError == (tokenMoves ? DeliveryReason.deviceMoved : DeliveryReason.deviceGone))
        #expect(try fixture.count("SELECT count(*) FROM delivery_attempts") == 1)
        await fake.stop()
    }

    /// Even a delivery whose device row now belongs to someone else is never sent there.
    @Test(arguments: [nil, TemporaryStore.previousSchema])
    func aSendChecksTheDeviceStillBelongsToTheNotificationsUser(migratedFrom: String?) async throws {
        let fake = try await FakeFCM(account: try FakeFCM.makeServiceAccount())
        var fixture = try NotifyFixture(migratedFrom: migratedFrom)
        try fixture.fcmChannel(fake)
        let alice = try fixture.user("alice", devices: ["tok-a"])
        let bob = try fixture.user("bob", devices: ["tok-b"])
        let ids = try fixture.notifications(1, user: alice, channels: ["phone"])
        try fixture.database.write { db in
            // a waiting delivery that names bob's device
            try db.execute(sql: """
                INSERT INTO deliveries (notification_id, channel, target, device_id, status, attempts, next_attempt_at, created_at, updated_at)
                VALUES (?, 'phone', 'device:2', 2, 'retry', 1, 0, 0, 0)
                """, arguments: [ids[0]])
            try db.execute(sql: "DELETE FROM deliveries WHERE target IS NULL")
        }
        _ = bob
        let report = try await fixture.service().run()
        #expect(report.deliveries.map(\.status) == [.failed])
        #expect(fake.messageCount == 0)
        await fake.stop()
    }

    @Test func apiUsersSeeShortDeliveryReasonsAndAdminsTheDetail() {
        let detail = DeliveryJSON(id: 1, notificationId: 1, channel: "phone", target: "device:1", status: .retry, attempts: 1,
                                  error: "FCM: token endpoint https://oauth2.example/token refused: clock skew 301 s")
        #expect(detail.forApp.error == "not delivered yet; will retry")
        #expect(DeliveryJSON(id: 1, notificationId: 1, channel: "phone", target: nil, status: .dead, attempts: 8, error: "x").forApp.error == "not delivered after 8 attempts")
        let gone = DeliveryJSON(id: 1, notificationId: 1, channel: "phone", target: nil, status: .failed, attempts: 1, error: DeliveryReason.deviceGone)
        #expect(gone.forApp.error == DeliveryReason.deviceGone)
        #expect(DeliveryJSON(id: 1, notificationId: 1, channel: "phone", target: nil, status: .sent, attempts: 1, error: nil).forApp.error == nil)

        // A device deactivated by FCM: the app sees why in its own words, not FCM's
        // (which name the Firebase project); an active one has no reason either way.
        let dead = DeviceJSON(id: 1, user: "alice", fcmToken: "tok", active: false, deactivatedReason: "UNREGISTERED (projects/acme-prod/messages)",
                              createdAt: Date(), updatedAt: Date())
        #expect(dead.forApp.deactivatedReason == "the push service no longer accepts this device's token")
        #expect(!(dead.forApp.deactivatedReason ?? "").contains("acme-prod"))
        #expect(DeviceJSON(id: 2, user: "alice", fcmToken: "tok2", active: true, createdAt: Date(), updatedAt: Date()).forApp.deactivatedReason == nil)
    }
}

@Suite struct PerUserLimitTests {
    @Test(arguments: [nil, TemporaryStore.previousSchema])
    func alertsAndDevicesStopAtTheLimitAndARefreshDoesNotCount(migratedFrom: String?) throws {
        let store = try TemporaryStore(migratedFrom: migratedFrom)
        _ = try UserService(database: store.database).add(name: "app")
        let alerts = AlertService(database: store.database, config: Config())
        let spec = try AlertJSON.decodeForTest(#"{"symbol":"AAPL","condition":{"kind":"above","value":1}}"#).spec(user: "app")
        for _ in 0..<2 { _ = try alerts.add(spec, limitPerUser: 2) }
        let error = expectError { _ = try alerts.add(spec, limitPerUser: 2) }
        #expect(error == .limitReached(kind: "alert", limit: 2, key: "[serve] max_alerts_per_user"))
        #expect(error?.message.contains("limit of 2 alerts per user") == true)
        #expect(try alerts.list(.init(user: "app")).count == 2)

        let devices = DeviceService(database: store.database)
        _ = try devices.add(user: "app", fcmToken: "t1", label: nil, limitPerUser: 1)
        _ = try devices.add(user: "app", fcmToken: "t1", label: "again", limitPerUser: 1)
        #expect(expectError { _ = try devices.add(user: "app", fcmToken: "t2", label: nil, limitPerUser: 1) }?.code == "limit_reached")
        #expect(try devices.list(user: "app").count == 1)
    }

    @Test func listsComeInPagesByIdCursor() throws {
        let store = try TemporaryStore()
        let alerts = AlertService(database: store.database, config: Config())
        let spec = try AlertJSON.decodeForTest(#"{"symbol":"AAPL","condition":{"kind":"above","value":1}}"#).spec(user: nil)
        let ids = try (0..<5).compactMap { _ in try alerts.add(spec).id }
        let page1 = try alerts.list(.init(limit: 2)).compactMap(\.id)
        let page2 = try alerts.list(.init(afterID: page1.last, limit: 2)).compactMap(\.id)
        let page3 = try alerts.list(.init(afterID: page2.last, limit: 2)).compactMap(\.id)
        #expect(page1 + page2 + page3 == ids)
        #expect(page3.count == 1)
    }

    /// created_at is each evaluate's start: two overlapping runs write it out of id order.
    /// The API's pages follow ids, so every notification is on exactly one page.
    @Test func notificationPagesFollowIdsEvenWhenCreationTimesDoNot() throws {
        var fixture = try NotifyFixture()
        fixture.config = Config()
        let alice = try fixture.user("alice")
        try fixture.database.write { db in
            for createdAt in [1_000, 12_000, 11_000, 5_000] {
                try db.execute(sql: "INSERT INTO notifications (user_id, symbol, price, observed_at, message, created_at) VALUES (?, 'AAPL', 1, 0, 'm', ?)", arguments: [alice, createdAt])
            }
        }
        let history = HistoryService(database: fixture.database)
        var seen: [Int64] = []
        var cursor = Int64.max
        while true {
            let page = try history.notifications(.init(userID: alice, beforeID: cursor, limit: 1)).map(\.id)
            guard let last = page.last else { break }
            seen += page
            cursor = last
        }
        #expect(seen == [4, 3, 2, 1])
    }

    @Test func writesAreLimitedPerUserAndComeBackOverTime() async throws {
        let limiter = WriteRateLimiter(perMinute: 3)
        let start = ContinuousClock.now
        for _ in 0..<3 { try await limiter.admit(1, now: start) }
        do {
            try await limiter.admit(1, now: start)
            Issue.record("a fourth write in the same instant was admitted")
        } catch APIError.tooManyWrites(let seconds) {
            #expect(seconds == 20)
        }
        try await limiter.admit(2, now: start)  // another user has a bucket of their own
        try await limiter.admit(1, now: start + .seconds(20))
    }

    @Test func limitSettingsAreReadCheckedAndShown() throws {
        let config = try ConfigLoader.parse("[serve]\nmax_alerts_per_user = 50\nmax_devices_per_user = 3\nwrites_per_minute = 10\n", file: "c.toml", environment: [:])
        #expect(config.serve.maxAlertsPerUser == 50 && config.serve.maxDevicesPerUser == 3 && config.serve.writesPerMinute == 10)
        let defaults = Config().serve
        #expect((defaults.maxAlertsPerUser, defaults.maxDevicesPerUser, defaults.writesPerMinute) == (1_000, 20, 120))
        for key in ["max_alerts_per_user", "max_devices_per_user", "writes_per_minute"] {
            let error = expectError { _ = try ConfigLoader.parse("[serve]\n\(key) = 0\n", file: "c.toml", environment: [:]) }
            #expect(error?.exitStatus == .config && error?.message.contains(key) == true)
        }
    }
}

@Suite struct FetchFairnessTests {
    /// 50 symbols that Finnhub has no data for, made by one user, kept AAPL, TSLA and MSFT
    /// of another user from ever being asked for within `max_requests_per_run`.
    @Test(arguments: [nil, TemporaryStore.previousSchema])
    func oneUsersUnknownSymbolsCannotStarveAnothersAndBackOff(migratedFrom: String?) async throws {
        let ts = Int(Date().timeIntervalSince1970) - 60
        let finnhub = try await FakeHTTPServer { request in
            let symbol = request.query("symbol") ?? ""
            if symbol.hasPrefix("ZZ") { return .json(#"{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}"#) }
            return .json(#"{"c":100.5,"d":1,"dp":1,"h":101,"l":99,"o":100,"pc":99.5,"t":\#(ts)}"#)
        }
        defer { Task { await finnhub.stop() } }
        let store = try TemporaryStore(migratedFrom: migratedFrom)
        var config = Config()
        var provider = ProviderConfig(name: .finnhub)
        provider.baseURL = finnhub.baseURL
        provider.apiKey = .file(store.write("finnhub.key", "KEY"))
        provider.maxRequestsPerRun = 10
        config.providers["finnhub"] = provider
        config.stockRoute = [.finnhub]
        let users = UserService(database: store.database)
        _ = try users.add(name: "mallory")
        _ = try users.add(name: "victim")
        let alerts = AlertService(database: store.database, config: config)
        for n in 1...50 {
            _ = try alerts.add(try AlertJSON.decodeForTest(#"{"symbol":"ZZ\#(n)","condition":{"kind":"above","value":1},"channels":["stdout"]}"#).spec(user: "mallory"))
        }
        for symbol in ["AAPL", "TSLA", "MSFT"] {
            _ = try alerts.add(try AlertJSON.decodeForTest(#"{"symbol":"\#(symbol)","condition":{"kind":"above","value":1000},"channels":["stdout"]}"#).spec(user: "victim"))
        }
        let service = FetchService(database: store.database, config: config, environment: [:])
        let now = Date()
        let first = try await service.run(now: now)
        #expect(Set(first.quotes.map(\.symbol)) == ["AAPL", "TSLA", "MSFT"])

        // The symbols that had no data wait; the next runs ask for the others.
        let asked = finnhub.requests.count
        let firstNoData = Set(finnhub.requests.compactMap { $0.query("symbol") }.filter { $0.hasPrefix("ZZ") })
        #expect(firstNoData.count == 7)
        let second = try await service.run(now: now.addingTimeInterval(60))
        let secondAsked = finnhub.requests[asked...].compactMap { $0.query("symbol") }
        #expect(Set(secondAsked).isDisjoint(with: firstNoData), "\(secondAsked)")
        #expect(Set(secondAsked).isSuperset(of: ["AAPL", "TSLA", "MSFT"]))
        #expect(secondAsked.count == 10)
        #expect(second.skipped.contains { $0.symbol == "ZZ1" && $0.reason.contains("no provider had data") })
        let backoff = try store.database.read { db in try Int.fetchOne(db, sql: "SELECT no_data_count FROM symbol_fetch_state WHERE symbol = 'ZZ1'") }
        #expect(backoff == 1)
        #expect(FetchService.noDataBackoffSeconds(afterAnswers: 1) == 300)
        #expect(FetchService.noDataBackoffSeconds(afterAnswers: 2) == 600)
        #expect(FetchService.noDataBackoffSeconds(afterAnswers: 30) == 86_400)
    }

    /// Stooq leaving a symbol out of a batch says nothing about it: no back-off. A
    /// back-off that ran out for a symbol nobody watches any more is dropped.
    @Test func onlyDefiniteNoDataBacksOffAndOldBackOffsGo() async throws {
        let stooq = try await FakeHTTPServer { _ in
            .respond(status: 200, body: "Symbol,Date,Time,Open,High,Low,Close,Volume\nZZZZ.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D\n")
        }
        defer { Task { await stooq.stop() } }
        let store = try TemporaryStore()
        var config = Config()
        var provider = ProviderConfig(name: .stooq)
        provider.baseURL = stooq.baseURL
        config.providers["stooq"] = provider
        config.stockRoute = [.stooq]
        let alerts = AlertService(database: store.database, config: config)
        for symbol in ["ZZZZ", "MSFT"] {
            _ = try alerts.add(try AlertJSON.decodeForTest(#"{"symbol":"\#(symbol)","condition":{"kind":"above","value":1},"channels":["stdout"]}"#).spec(user: nil))
        }
        let service = FetchService(database: store.database, config: config, environment: [:])
        let now = Date()
        let report = try await service.run(now: now)
        #expect(report.errors.map { "\($0.code):\($0.symbol ?? "")" }.sorted() == ["no_data:ZZZZ", "not_answered:MSFT"])
        let backingOff = try service.symbolsBackingOff(now: now)
        #expect(Array(backingOff.keys) == ["ZZZZ"])

        // ZZZZ's alert goes; once its back-off has run out, the row goes too
        try alerts.remove(ids: [1])
        _ = try await service.run(now: now.addingTimeInterval(3600))
        #expect(try store.database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM symbol_fetch_state") } == 0)
    }

    @Test func theWatchListTakesItsTurnsLikeAUser() throws {
        let store = try TemporaryStore()
        var config = Config()
        config.watch = ["W1", "W2"]
        let alerts = AlertService(database: store.database, config: config)
        for symbol in ["A1", "A2", "A3"] {
            _ = try alerts.add(try AlertJSON.decodeForTest(#"{"symbol":"\#(symbol)","condition":{"kind":"above","value":1}}"#).spec(user: nil))
        }
        let order = try FetchService(database: store.database, config: config, environment: [:]).watchedSymbols().map(\.text)
        #expect(order == ["A1", "W1", "A2", "W2", "A3"])
    }

    @Test func symbolsTakeTurnsAcrossUsers() throws {
        let store = try TemporaryStore()
        let users = UserService(database: store.database)
        _ = try users.add(name: "many")
        _ = try users.add(name: "few")
        let alerts = AlertService(database: store.database, config: Config())
        for symbol in ["A1", "A2", "A3", "A4"] {
            _ = try alerts.add(try AlertJSON.decodeForTest(#"{"symbol":"\#(symbol)","condition":{"kind":"above","value":1}}"#).spec(user: "many"))
        }
        _ = try alerts.add(try AlertJSON.decodeForTest(#"{"symbol":"Z9","condition":{"kind":"above","value":1}}"#).spec(user: "few"))
        let order = try FetchService(database: store.database, config: Config(), environment: [:]).watchedSymbols().map(\.text)
        #expect(Array(order.prefix(2)).sorted() == ["A1", "Z9"])
    }
}

extension AlertJSON {
    static func decodeForTest(_ text: String) throws -> AlertJSON {
        try JSONOutput.decoder().decode(AlertJSON.self, from: Data(text.utf8))
    }
}
