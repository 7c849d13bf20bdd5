import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

/// The storage contract: what every `DataStore` implementation must do, checked through
/// the protocols alone (no SQL, no GRDB, no `AppDatabase`), so that the same tests judge
/// SQLite today and PostgreSQL later. A new implementation is one more entry in
/// `backends`; every test runs once per entry.
///
/// Times are whole seconds: stores keep milliseconds.
@Suite struct StoreContractTests {
    /// One implementation under test.
    struct Backend: CustomStringConvertible, Sendable {
        let name: String
        /// Opens a new, empty store. `scratch` is a fresh folder of this test's own, removed
        /// after it: a file-based store keeps its files there; a server-based one can name
        /// its database or schema after it.
        let make: @Sendable (_ scratch: String) async throws -> any DataStore
        /// A second store on the same data, as another process would open it.
        let reopen: @Sendable (any DataStore) async throws -> any DataStore

        var description: String { name }
    }

    static let backends: [Backend] = [
        Backend(name: "sqlite", make: { scratch in try openDataStore(at: scratch + "/contract.db") },
                reopen: { store in try openDataStore(at: store.location) }),
    ] + (TestPostgres.available ? [
        // A command's store (one session) and serve's (a pool) take different paths.
        Backend(name: "postgresql", make: { _ in try await TestPostgres.newStore() }, reopen: TestPostgres.reopen),
        Backend(name: "postgresql-pool", make: { _ in try await TestPostgres.newStore(connections: .pool(maximum: 4)) }, reopen: TestPostgres.reopen),
    ] : [])

    @Test(.enabled(if: TestPostgres.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv); the contract ran on SQLite only"))
    func postgresqlIsOneOfTheBackends() {
        #expect(Self.backends.map(\.name) == ["sqlite", "postgresql", "postgresql-pool"])
    }

    /// tick's lock: one holder across processes; released, it can be taken again.
    @Test(arguments: StoreContractTests.backends)
    func runLockHasOneHolderAtATime(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let other = try await backend.reopen(store)
            let lease = try store.runLock(name: "tick-lock", holder: "tick")
            #expect {
                _ = try other.runLock(name: "tick-lock", holder: "tick")
            } throws: { error in
                guard case let .temporary(message) = error as? StockwatchError else { return false }
                return message.hasPrefix("another tick is still running")
            }
            // The holder's own store goes on working while it holds the lock.
            #expect(try store.users().isEmpty)
            try other.runLock(name: "evaluate-lock", holder: "evaluate").release()
            lease.release()
            try other.runLock(name: "tick-lock", holder: "tick").release()
            try store.runLock(name: "tick-lock", holder: "tick").release()
        }
    }

    /// Runs `body` with a new store in its own temporary folder, removed afterwards.
    func withStore(_ backend: Backend, _ body: (any DataStore) async throws -> Void) async throws {
        let scratch = NSTemporaryDirectory() + "stockwatch-contract-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try await backend.make(scratch)
        try await body(store)
    }

    let now = Date(timeIntervalSince1970: 1_780_000_000)

    func at(_ seconds: Int) -> Date { now.addingTimeInterval(TimeInterval(seconds)) }

    /// A token hash as the services make them: 64 hex characters, unique per `seed`.
    func hash(_ seed: Int) -> String { String(format: "%064x", seed) }

    func spec(_ symbol: String, _ condition: Condition, user: String?, channels: [String] = ["stdout"], state: AlertState = .armed) -> AlertSpec {
        var spec = AlertSpec(symbol: symbol, condition: condition)
        spec.user = user
        spec.channels = channels
        spec.state = state
        return spec
    }

    func quote(_ symbol: String, _ price: Double, at seconds: Int, provider: String = "stooq") -> QuoteJSON {
        QuoteJSON(symbol: symbol, price: price, provider: provider, observedAt: at(seconds))
    }

    func outcome(_ job: DeliveryJob, _ status: DeliveryStatus, next: Date? = nil, error: String? = nil, deactivate: Bool = false) -> DeliveryOutcome {
        DeliveryOutcome(job: job, status: status, nextAttemptAt: next ?? now, error: error, deactivateDevice: deactivate)
    }

    // MARK: AccountStore

    @Test(arguments: StoreContractTests.backends)
    func usersAddListFindAndRemove(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(!store.location.isEmpty)
            #expect(try store.users().isEmpty)
            #expect(try store.tokenHashes().isEmpty)

            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            #expect(alice.name == "alice")
            #expect(alice.alerts == 0 && alice.devices == 0)
            #expect(alice.createdAt == now)
            let bob = try store.addUser(name: "bob", tokenHash: hash(2), now: at(1))
            #expect(bob.id != alice.id)

            let listed = try store.users()
            #expect(listed.map(\.name) == ["alice", "bob"])
            #expect(listed.map(\.id) == [alice.id, bob.id])
            #expect(listed.allSatisfy { $0.alerts == 0 && $0.devices == 0 })
            #expect(listed.map(\.createdAt) == [now, at(1)])

            // A taken name, whatever the token.
            #expect(throws: StockwatchError.alreadyExists(kind: "user", id: "alice")) {
                try store.addUser(name: "alice", tokenHash: hash(3), now: now)
            }
            #expect(try store.users().count == 2)

            let found = try #require(try store.user(tokenHash: hash(1)))
            #expect(found.id == alice.id)
            #expect(found.name == "alice")
            #expect(found.tokenHash == hash(1))
            #expect(try store.user(tokenHash: hash(99)) == nil)
            #expect(try store.tokenHashes() == [alice.id: hash(1), bob.id: hash(2)])

            // The counts follow what the user owns.
            _ = try store.addAlerts([spec("AAPL", .above(100), user: "alice"), spec("MSFT", .below(50), user: "alice")], limitPerUser: nil, now: now)
            _ = try store.registerDevice(user: "alice", fcmToken: "tok-a", label: nil, limitPerUser: nil, now: now)
            let counted = try #require(try store.users().first { $0.name == "alice" })
            #expect(counted.alerts == 2)
            #expect(counted.devices == 1)

            #expect(throws: StockwatchError.notFound(kind: "user", id: "nobody")) { try store.removeUser(name: "nobody") }
            #expect(try store.users().count == 2)

            // Removing a user removes what they own and their login.
            try store.removeUser(name: "alice")
            #expect(try store.users().map(\.name) == ["bob"])
            #expect(try store.user(tokenHash: hash(1)) == nil)
            #expect(try store.tokenHashes() == [bob.id: hash(2)])
            #expect(try store.alerts(AlertQuery()).isEmpty)
            #expect(try store.devices(user: nil, afterID: nil, limit: nil).isEmpty)
            // The name is free again.
            let again = try store.addUser(name: "alice", tokenHash: hash(4), now: now)
            #expect(again.id != alice.id)
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func deviceRegisterRefreshMoveAndLimit(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let bob = try store.addUser(name: "bob", tokenHash: hash(2), now: now)

            let first = try store.registerDevice(user: "alice", fcmToken: "tok-1", label: "pixel", limitPerUser: nil, now: now)
            #expect(first.user == "alice")
            #expect(first.fcmToken == "tok-1")
            #expect(first.label == "pixel")
            #expect(first.active)
            #expect(first.deactivatedReason == nil)
            #expect(first.createdAt == now && first.updatedAt == now)

            // The same user again: a refresh of the same device, even at the limit.
            let refreshed = try store.registerDevice(user: "alice", fcmToken: "tok-1", label: nil, limitPerUser: 1, now: at(60))
            #expect(refreshed.id == first.id)
            #expect(refreshed.user == "alice")
            #expect(refreshed.label == "pixel")
            #expect(refreshed.active)
            #expect(refreshed.createdAt == now)
            #expect(refreshed.updatedAt == at(60))
            let relabelled = try store.registerDevice(user: "alice", fcmToken: "tok-1", label: "pixel 8", limitPerUser: nil, now: at(61))
            #expect(relabelled.id == first.id)
            #expect(relabelled.label == "pixel 8")
            #expect(try store.devices(user: "alice", afterID: nil, limit: nil).map(\.id) == [first.id])

            // Another user registers the same token: a new device of theirs, nothing carried over.
            let moved = try store.registerDevice(user: "bob", fcmToken: "tok-1", label: nil, limitPerUser: nil, now: at(120))
            #expect(moved.id != first.id)
            #expect(moved.id > first.id)
            #expect(moved.user == "bob")
            #expect(moved.label == nil)
            #expect(moved.fcmToken == "tok-1")
            #expect(moved.createdAt == at(120))
            #expect(try store.devices(user: "alice", afterID: nil, limit: nil).isEmpty)
            #expect(try store.devices(user: "bob", afterID: nil, limit: nil).map(\.id) == [moved.id])

            // A new device beyond the limit; the existing one still refreshes.
            #expect(throws: StockwatchError.limitReached(kind: "device", limit: 1, key: "[serve] max_devices_per_user")) {
                try store.registerDevice(user: "bob", fcmToken: "tok-2", label: nil, limitPerUser: 1, now: now)
            }
            #expect(try store.devices(user: "bob", afterID: nil, limit: nil).count == 1)
            #expect(try store.registerDevice(user: "bob", fcmToken: "tok-1", label: nil, limitPerUser: 1, now: now).id == moved.id)
            let second = try store.registerDevice(user: "bob", fcmToken: "tok-2", label: "tablet", limitPerUser: 2, now: now)
            #expect(second.id > moved.id)

            // An unknown user is never created on the fly.
            #expect(throws: StockwatchError.notFound(kind: "user", id: "carol")) {
                try store.registerDevice(user: "carol", fcmToken: "tok-3", label: nil, limitPerUser: nil, now: now)
            }
            #expect(try store.users().map(\.name) == ["alice", "bob"])

            // No user: the default user, created on first use.
            let shell = try store.registerDevice(user: nil, fcmToken: "tok-3", label: nil, limitPerUser: nil, now: now)
            #expect(shell.user == "default")
            let users = try store.users()
            #expect(users.map(\.name) == ["alice", "bob", "default"])
            #expect(users.map(\.devices) == [0, 2, 1])
            #expect(try store.devices(user: "default", afterID: nil, limit: nil).map(\.id) == [shell.id])
            _ = (alice, bob)
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func devicePagesAndOwnedRemoval(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let bob = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            var aliceIDs: [Int64] = []
            for n in 1...5 {
                aliceIDs.append(try store.registerDevice(user: "alice", fcmToken: "alice-\(n)", label: "phone \(n)", limitPerUser: nil, now: now).id)
            }
            let bobDevice = try store.registerDevice(user: "bob", fcmToken: "bob-1", label: nil, limitPerUser: nil, now: now)
            #expect(aliceIDs == aliceIDs.sorted())

            let all = try store.devices(user: nil, afterID: nil, limit: nil)
            #expect(all.map(\.id) == aliceIDs + [bobDevice.id])
            #expect(all.map(\.user) == Array(repeating: "alice", count: 5) + ["bob"])

            // Pages of two.
            var pages: [[Int64]] = []
            var after: Int64? = nil
            while true {
                let page = try store.devices(user: "alice", afterID: after, limit: 2).map(\.id)
                if page.isEmpty { break }
                pages.append(page)
                after = page.last
                if pages.count > 10 { break }
            }
            #expect(pages == [Array(aliceIDs[0..<2]), Array(aliceIDs[2..<4]), [aliceIDs[4]]])
            #expect(try store.devices(user: nil, afterID: aliceIDs[4], limit: 10).map(\.id) == [bobDevice.id])
            #expect(throws: StockwatchError.notFound(kind: "user", id: "nobody")) {
                try store.devices(user: "nobody", afterID: nil, limit: nil)
            }

            // Another owner's device is not found and stays.
            #expect(throws: StockwatchError.notFound(kind: "device", id: String(aliceIDs[0]))) {
                try store.removeDevice(id: aliceIDs[0], ownerID: bob.id, now: now)
            }
            #expect(try store.devices(user: "alice", afterID: nil, limit: nil).count == 5)
            #expect(throws: StockwatchError.notFound(kind: "device", id: "999999")) {
                try store.removeDevice(id: 999_999, ownerID: nil, now: now)
            }

            try store.removeDevice(id: aliceIDs[0], ownerID: alice.id, now: now)
            try store.removeDevice(id: bobDevice.id, ownerID: nil, now: now)
            #expect(try store.devices(user: nil, afterID: nil, limit: nil).map(\.id) == Array(aliceIDs[1...]))
            #expect(throws: StockwatchError.notFound(kind: "device", id: String(aliceIDs[0]))) {
                try store.removeDevice(id: aliceIDs[0], ownerID: alice.id, now: now)
            }
            #expect(try store.users().map(\.devices) == [4, 0])

            // A removed device's id is never given again.
            let next = try store.registerDevice(user: "bob", fcmToken: "bob-2", label: nil, limitPerUser: nil, now: now)
            #expect(next.id > bobDevice.id)
        }
    }

    // MARK: AlertStore

    @Test(arguments: StoreContractTests.backends)
    func alertsAddAndQuery(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let bob = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            var noted = spec("EURUSD", .crossesBelow(1.05), user: "alice", channels: ["stdout", "hook"])
            noted.trigger = .once
            noted.cooldownSeconds = 600
            noted.note = "parity watch"
            noted.expiresAt = at(86_400)
            let specs = [
                spec("AAPL", .above(100), user: "alice"),
                spec("MSFT", .below(50), user: "alice"),
                spec("AAPL", .crossesAbove(200), user: "bob"),
                spec("TSLA", .rise(percent: 5, windowSeconds: 3600), user: "alice", state: .paused),
                noted,
            ]
            let added = try store.addAlerts(specs, limitPerUser: nil, now: now)
            #expect(added.count == 5)
            let ids = added.compactMap(\.id)
            #expect(ids.count == 5)
            #expect(ids == ids.sorted() && Set(ids).count == 5)
            #expect(added.map(\.user) == ["alice", "alice", "bob", "alice", "alice"])
            #expect(added.map(\.symbol) == ["AAPL", "MSFT", "AAPL", "TSLA", "EURUSD"])
            #expect(added.map(\.condition) == specs.map { AlertJSON.ConditionJSON($0.condition) })
            #expect(added.map(\.state) == [.armed, .armed, .armed, .paused, .armed])
            #expect(added[0].channels == ["stdout"])
            #expect(added[4].channels == ["stdout", "hook"])
            #expect(added[4].trigger == .once)
            #expect(added[4].cooldownSeconds == 600)
            #expect(added[4].note == "parity watch")
            #expect(added[4].expiresAt == at(86_400))
            #expect(added.allSatisfy { $0.createdAt == now && $0.lastFiredAt == nil })

            // What was returned is what is read back.
            #expect(try store.alerts(AlertQuery()) == added)
            #expect(try store.alert(id: ids[4], ownerID: nil) == added[4])
            #expect(try store.alert(id: ids[0], ownerID: alice.id) == added[0])

            // Filters.
            #expect(try store.alerts(AlertQuery(user: "alice")).map(\.id) == [ids[0], ids[1], ids[3], ids[4]])
            #expect(try store.alerts(AlertQuery(user: "bob")).map(\.id) == [ids[2]])
            #expect(try store.alerts(AlertQuery(symbol: "AAPL")).map(\.id) == [ids[0], ids[2]])
            #expect(try store.alerts(AlertQuery(user: "alice", symbol: "AAPL")).map(\.id) == [ids[0]])
            #expect(try store.alerts(AlertQuery(state: .paused)).map(\.id) == [ids[3]])
            #expect(try store.alerts(AlertQuery(user: "bob", state: .paused)).isEmpty)
            #expect(try store.alerts(AlertQuery(symbol: "NOPE")).isEmpty)
            #expect(try store.alerts(AlertQuery(afterID: ids[0], limit: 2)).map(\.id) == [ids[1], ids[2]])
            #expect(try store.alerts(AlertQuery(user: "alice", afterID: ids[1], limit: 10)).map(\.id) == [ids[3], ids[4]])
            #expect(try store.alerts(AlertQuery(limit: 1)).map(\.id) == [ids[0]])
            #expect(throws: StockwatchError.notFound(kind: "user", id: "nobody")) { try store.alerts(AlertQuery(user: "nobody")) }

            // Scoping by owner.
            #expect(throws: StockwatchError.notFound(kind: "alert", id: String(ids[0]))) { try store.alert(id: ids[0], ownerID: bob.id) }
            #expect(throws: StockwatchError.notFound(kind: "alert", id: "999999")) { try store.alert(id: 999_999, ownerID: nil) }

            // All or none: an unknown user in the batch adds nothing.
            #expect(throws: StockwatchError.notFound(kind: "user", id: "carol")) {
                try store.addAlerts([spec("IBM", .above(1), user: "alice"), spec("IBM", .above(1), user: "carol")], limitPerUser: nil, now: now)
            }
            #expect(try store.alerts(AlertQuery()).count == 5)

            // The limit counts what the user would have.
            #expect(throws: StockwatchError.limitReached(kind: "alert", limit: 4, key: "[serve] max_alerts_per_user")) {
                try store.addAlerts([spec("IBM", .above(1), user: "alice")], limitPerUser: 4, now: now)
            }
            #expect(throws: StockwatchError.limitReached(kind: "alert", limit: 2, key: "[serve] max_alerts_per_user")) {
                try store.addAlerts([spec("IBM", .above(1), user: "bob"), spec("IBM", .above(2), user: "bob")], limitPerUser: 2, now: now)
            }
            #expect(try store.alerts(AlertQuery(user: "bob")).count == 1)
            #expect(try store.addAlerts([spec("IBM", .above(1), user: "bob")], limitPerUser: 2, now: now).count == 1)

            // No user: the default user, created on first use.
            let shell = try store.addAlerts([spec("NVDA", .below(90), user: nil)], limitPerUser: nil, now: now)
            #expect(shell.map(\.user) == ["default"])
            #expect(try store.alerts(AlertQuery(user: "default")).map(\.id) == shell.map(\.id))
            #expect(try store.users().map(\.alerts) == [4, 2, 1])
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func removeAlertsIsAllOrNothingAndIdsAreNeverReused(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            let ids = try store.addAlerts(
                [spec("AAPL", .above(1), user: "alice"), spec("AAPL", .above(2), user: "alice"), spec("AAPL", .above(3), user: "alice"), spec("AAPL", .above(4), user: "bob")],
                limitPerUser: nil, now: now
            ).compactMap(\.id)
            #expect(ids.count == 4)

            #expect(throws: StockwatchError.notFound(kind: "alert", id: "999999")) { try store.removeAlerts(ids: [ids[0], 999_999], ownerID: nil) }
            #expect(try store.alerts(AlertQuery()).map(\.id) == ids)
            // Another user's alert among the ids: none removed.
            #expect(throws: StockwatchError.notFound(kind: "alert", id: String(ids[3]))) { try store.removeAlerts(ids: [ids[0], ids[3]], ownerID: alice.id) }
            #expect(try store.alerts(AlertQuery()).map(\.id) == ids)

            try store.removeAlerts(ids: [ids[0], ids[1]], ownerID: alice.id)
            #expect(try store.alerts(AlertQuery()).map(\.id) == [ids[2], ids[3]])
            #expect(throws: StockwatchError.notFound(kind: "alert", id: String(ids[0]))) { try store.alert(id: ids[0], ownerID: nil) }

            // Removing the highest id does not free it.
            try store.removeAlerts(ids: [ids[3]], ownerID: nil)
            let next = try #require(try store.addAlerts([spec("AAPL", .above(5), user: "bob")], limitPerUser: nil, now: now).first?.id)
            #expect(next > ids[3])
            #expect(try store.alerts(AlertQuery()).map(\.id) == [ids[2], next])
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func changeAlertStateDecidesInOneStep(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let added = try #require(try store.addAlerts([spec("AAPL", .above(100), user: "alice")], limitPerUser: nil, now: now).first)
            let id = try #require(added.id)

            let paused = try store.changeAlertState(id: id) { alert in
                #expect(alert.id == id)
                #expect(alert.state == .armed)
                #expect(alert.user == "alice")
                return .paused
            }
            #expect(paused.state == .paused)
            #expect(paused.id == id)
            #expect(try store.alert(id: id, ownerID: nil).state == .paused)

            // nil: unchanged.
            let unchanged = try store.changeAlertState(id: id) { alert in
                #expect(alert.state == .paused)
                return nil
            }
            #expect(unchanged.state == .paused)
            #expect(try store.alert(id: id, ownerID: nil).state == .paused)

            // A refusal is the caller's error, and changes nothing.
            #expect(throws: StockwatchError.usage("refused")) {
                try store.changeAlertState(id: id) { _ throws(StockwatchError) -> AlertState? in throw .usage("refused") }
            }
            #expect(try store.alert(id: id, ownerID: nil) == paused)

            #expect(throws: StockwatchError.notFound(kind: "alert", id: "999999")) {
                try store.changeAlertState(id: 999_999) { _ in .paused }
            }

            let armed = try store.changeAlertState(id: id) { _ in .armed }
            #expect(armed.state == .armed)
            #expect(try store.alerts(AlertQuery(state: .armed)).map(\.id) == [id])
            #expect(try store.alerts(AlertQuery(state: .paused)).isEmpty)
        }
    }

    // MARK: QuoteStore

    @Test(arguments: StoreContractTests.backends)
    func quotesAddAndRead(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let start = try store.streamStart()
            #expect(try store.streamBatch(after: start, limit: 10).quotes.isEmpty)
            #expect(try store.latestQuotes(symbols: ["AAPL"]).isEmpty)

            let first = [quote("AAPL", 10, at: -120), quote("AAPL", 11, at: -60), quote("MSFT", 20, at: -90), quote("AAPL", 12, at: 0)]
            let stored = try store.addQuotes(first, fetchedAt: now)
            #expect(stored.map(\.symbol) == ["AAPL", "AAPL", "MSFT", "AAPL"])
            #expect(stored.map(\.observedAt) == [at(-120), at(-60), at(-90), at(0)])

            // The same symbol and time again is stored once; the first price stays.
            let again = try store.addQuotes([quote("AAPL", 99, at: -60), quote("AAPL", 13, at: 60, provider: "finnhub")], fetchedAt: at(60))
            #expect(again.count == 1)
            #expect(again.first?.price == 13)
            #expect(again.first?.observedAt == at(60))
            #expect(try store.addQuotes(first, fetchedAt: at(61)).isEmpty)

            // The stream's order: as committed, oldest first; nothing twice, nothing after the end.
            let streamed = try store.streamBatch(after: start, limit: 100)
            #expect(!streamed.more)
            #expect(streamed.quotes.map(\.observedAt) == [at(-120), at(-60), at(-90), at(0), at(60)])
            #expect(streamed.quotes.map(\.price) == [10, 11, 20, 12, 13])
            #expect(streamed.quotes.last?.provider == "finnhub")
            #expect(try store.streamBatch(after: streamed.position, limit: 10).quotes.isEmpty)
            #expect(try store.streamBatch(after: store.streamStart(), limit: 10).quotes.isEmpty)
            // A small limit: read on until no more, the same quotes once each.
            var position = start, pages: [QuoteJSON] = [], reads = 0
            while true {
                let page = try store.streamBatch(after: position, limit: 1)
                pages += page.quotes
                position = page.position
                reads += 1
                if !page.more || reads > 10 { break }
            }
            #expect(reads > 1)
            #expect(pages.map(\.price) == [10, 11, 20, 12, 13])

            // By observed time, newest first.
            #expect(try store.quotes(symbol: "AAPL", since: nil, limit: 10).map(\.observedAt) == [at(60), at(0), at(-60), at(-120)])
            #expect(try store.quotes(symbol: "AAPL", since: nil, limit: 10).map(\.price) == [13, 12, 11, 10])
            #expect(try store.quotes(symbol: "AAPL", since: nil, limit: 2).map(\.observedAt) == [at(60), at(0)])
            #expect(try store.quotes(symbol: "AAPL", since: at(-61), limit: 10).map(\.observedAt) == [at(60), at(0), at(-60)])
            #expect(try store.quotes(symbol: nil, since: nil, limit: 10).map(\.observedAt) == [at(60), at(0), at(-60), at(-90), at(-120)])
            #expect(try store.quotes(symbol: "NOPE", since: nil, limit: 10).isEmpty)

            let latest = try store.latestQuotes(symbols: ["MSFT", "NOPE", "AAPL"])
            #expect(latest.map(\.symbol) == ["MSFT", "AAPL"])
            #expect(latest.map(\.price) == [20, 13])
            #expect(latest.map(\.observedAt) == [at(-90), at(60)])
            #expect(latest.map(\.provider) == ["stooq", "finnhub"])

            #expect(try store.newestObservedAt(symbols: ["AAPL", "MSFT", "NOPE"]) == ["AAPL": at(60), "MSFT": at(-90)])
            #expect(try store.newestObservedAt(symbols: []).isEmpty)
        }
    }

    /// Two fetches at the same moment never ask one provider at once: a claim holds until
    /// its holder releases it (or its process dies), one provider at a time.
    @Test(arguments: StoreContractTests.backends)
    func aProviderIsClaimedByOneFetchAtATime(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let other = try await backend.reopen(store)
            let claim = try #require(try store.claimProvider("fixer"))
            #expect(try other.claimProvider("fixer") == nil)
            let finnhub = try #require(try other.claimProvider("finnhub"))  // another provider is free
            #expect(try store.providerStates().isEmpty)  // the holder's store goes on working
            claim.release()
            let next = try #require(try other.claimProvider("fixer"))
            #expect(try store.claimProvider("fixer") == nil)
            next.release()
            finnhub.release()
            try #require(try store.claimProvider("finnhub")).release()
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func recordFetchKeepsBudgetsQuotesAndBackoffs(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try store.providerStates().isEmpty)
            #expect(try store.symbolsBackingOff(now: now).isEmpty)

            let finnhub = ProviderStateRecord(provider: "finnhub", lastSuccessAt: now)
            let stooq = ProviderStateRecord(
                provider: "stooq", lastErrorAt: at(-5), lastError: "HTTP 503", consecutiveFailures: 2, blockedUntil: at(300), blockedReason: "rate limited")
            func run(_ seconds: Int, states: [ProviderStateRecord] = [], quotes: [QuoteJSON] = [], served: Set<String> = [], noData: [String: String] = [:]) -> FetchWrite {
                FetchWrite(
                    providerStates: states, quotes: quotes, served: served, noData: noData,
                    noDataBackoffSeconds: { answers in Int64(answers) * 600 }, retentionSeconds: 30 * 86_400, now: at(seconds))
            }

            let stored = try store.recordFetch(run(0, states: [finnhub, stooq], quotes: [quote("AAPL", 10, at: -30)], served: ["AAPL"], noData: ["ZZZ": "unknown symbol"]))
            #expect(stored.map(\.symbol) == ["AAPL"])
            #expect(try store.latestQuotes(symbols: ["AAPL"]).map(\.price) == [10])

            let states = try store.providerStates().sorted { $0.provider < $1.provider }
            #expect(states.map(\.provider) == ["finnhub", "stooq"])
            #expect(states[0].lastSuccessAt == now)
            #expect(states[0].lastErrorAt == nil && states[0].lastError == nil && states[0].blockedUntil == nil)
            #expect(states[0].consecutiveFailures == 0)
            #expect(states[1].lastSuccessAt == nil)
            #expect(states[1].lastErrorAt == at(-5))
            #expect(states[1].lastError == "HTTP 503")
            #expect(states[1].consecutiveFailures == 2)
            #expect(states[1].blockedUntil == at(300))
            #expect(states[1].blockedReason == "rate limited")

            // The first no-data answer: the closure's seconds for n = 1.
            #expect(try store.symbolsBackingOff(now: now) == ["ZZZ": at(600)])
            #expect(try store.symbolsBackingOff(now: at(601)).isEmpty)

            // A budget saved again replaces the provider's; a quote stored already is not new.
            var recovered = stooq
            recovered.consecutiveFailures = 0
            recovered.lastSuccessAt = at(60)
            recovered.blockedUntil = nil
            recovered.blockedReason = nil
            let second = try store.recordFetch(run(60, states: [recovered], quotes: [quote("AAPL", 10, at: -30), quote("AAPL", 11, at: 30)], served: ["AAPL"], noData: ["ZZZ": "still unknown"]))
            #expect(second.map(\.observedAt) == [at(30)])
            let updated = try store.providerStates().sorted { $0.provider < $1.provider }
            #expect(updated.count == 2)
            #expect(updated[1].consecutiveFailures == 0)
            #expect(updated[1].lastSuccessAt == at(60))
            #expect(updated[1].blockedUntil == nil)
            #expect(updated[0].lastSuccessAt == now)
            // The second answer in a row: n = 2, counted from this run.
            #expect(try store.symbolsBackingOff(now: at(60)) == ["ZZZ": at(60 + 1200)])

            // A symbol some provider served ends its back-off, and the count starts again.
            _ = try store.recordFetch(run(120, quotes: [quote("ZZZ", 5, at: 110)], served: ["ZZZ"]))
            #expect(try store.symbolsBackingOff(now: at(120)).isEmpty)
            _ = try store.recordFetch(run(180, noData: ["ZZZ": "gone again"]))
            #expect(try store.symbolsBackingOff(now: at(180)) == ["ZZZ": at(180 + 600)])
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func recordFetchPrunesPastTheRetention(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            // MSFT's rise window (2 h) needs its quotes since now - 2 h and the one before.
            _ = try store.addAlerts([spec("MSFT", .rise(percent: 5, windowSeconds: 7200), user: "alice")], limitPerUser: nil, now: at(-20_000))
            _ = try store.addQuotes(
                [quote("AAPL", 1, at: -10_000), quote("AAPL", 2, at: -5_000), quote("AAPL", 3, at: 0),
                 quote("OLD", 4, at: -10_000),
                 quote("MSFT", 5, at: -10_000), quote("MSFT", 6, at: -8_000), quote("MSFT", 7, at: -5_000), quote("MSFT", 8, at: 0)],
                fetchedAt: at(-10_000))
            _ = try store.recordFetch(FetchWrite(
                providerStates: [], quotes: [], served: [], noData: [:], noDataBackoffSeconds: { _ in 60 }, retentionSeconds: 3600, now: now))
            #expect(try store.quotes(symbol: "AAPL", since: nil, limit: 10).map(\.observedAt) == [at(0)])
            // A symbol's newest quote stays, however old.
            #expect(try store.quotes(symbol: "OLD", since: nil, limit: 10).map(\.observedAt) == [at(-10_000)])
            #expect(try store.quotes(symbol: "MSFT", since: nil, limit: 10).map(\.observedAt) == [at(0), at(-5_000), at(-8_000)])
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func watchedSymbolsTakeTurnsStalestFirst(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            #expect(try store.watchedSymbols(watchList: []).isEmpty)
            #expect(try store.watchedSymbols(watchList: ["EURUSD"]) == ["EURUSD"])

            _ = try store.addQuotes([quote("AAPL", 1, at: 0), quote("IBM", 1, at: -100), quote("NVDA", 1, at: -50), quote("TSLA", 1, at: -500)], fetchedAt: now)
            _ = try store.addAlerts(
                [spec("AAPL", .above(1), user: "alice"), spec("IBM", .above(1), user: "alice"), spec("MSFT", .above(1), user: "alice"),
                 spec("TSLA", .above(1), user: "alice", state: .paused),
                 spec("NVDA", .above(1), user: "bob"), spec("AAPL", .above(2), user: "bob")],
                limitPerUser: nil, now: now)

            let watched = try store.watchedSymbols(watchList: [])
            // Armed alerts only (TSLA's is paused), each symbol once.
            #expect(Set(watched) == ["AAPL", "IBM", "MSFT", "NVDA"])
            #expect(watched.count == 4)
            // Turn 1: alice's stalest (MSFT, never fetched) and bob's (NVDA); turn 2: alice's IBM and bob's AAPL.
            #expect(watched == ["MSFT", "NVDA", "IBM", "AAPL"])

            let withList = try store.watchedSymbols(watchList: ["EURUSD", "AAPL"])
            #expect(Set(withList) == ["AAPL", "IBM", "MSFT", "NVDA", "EURUSD"])
            #expect(withList.count == 5)
        }
    }

    // MARK: EvaluationStore and OutboxStore

    @Test(arguments: StoreContractTests.backends)
    func aRenewedClaimIsNotTakenWhenItsFirstLeaseEnds(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addAlerts([spec("AAPL", .above(100), user: "alice")], limitPerUser: nil, now: at(-60))
            _ = try store.addQuotes([quote("AAPL", 101.5, at: 0)], fetchedAt: now)
            #expect(try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true).notifications.count == 1)
            let job = try #require(try await store.claimDeliveries(channels: ["stdout"], fanOut: [], limit: 10, cutoff: now, leaseUntil: at(60), now: now).jobs.first)
            // Renewed at 50 s for another 60 s: the claim made at 0 still holds at 61 s.
            #expect(try await store.renewClaims([job.deliveryID: job.attempt], leaseUntil: at(110), now: at(50)) == [job.deliveryID])
            #expect(try await store.claimDeliveries(channels: ["stdout"], fanOut: [], limit: 10, cutoff: at(61), leaseUntil: at(121), now: at(61)).jobs.isEmpty)
            #expect(try store.deliveryHealth(overdueBefore: at(100), deadSince: now).overdue == 0)
            // A renewal naming another attempt renews nothing.
            #expect(try await store.renewClaims([job.deliveryID: job.attempt + 1], leaseUntil: at(500), now: at(60)).isEmpty)
            // Once the renewed lease ends, another run takes it over.
            let taken = try #require(try await store.claimDeliveries(channels: ["stdout"], fanOut: [], limit: 10, cutoff: at(111), leaseUntil: at(171), now: at(111)).jobs.first)
            #expect(taken.attempt == job.attempt + 1)
            #expect(try await store.renewClaims([job.deliveryID: job.attempt], leaseUntil: at(200), now: at(112)).isEmpty)
        }
    }

    /// The report counts every active alert of the symbols with fresh quotes, whatever its
    /// kind, changed or not; paused ones and other symbols' are not counted (PostgreSQL
    /// counts in its grouped read of the batch's alerts, SQLite from the seeks' partial
    /// indexes).
    @Test(arguments: StoreContractTests.backends)
    func evaluateCountsTheActiveAlertsOfTheSymbolsItJudged(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("AAPL", 100, at: -120), quote("MSFT", 50, at: -120)], fetchedAt: at(-120))
            _ = try store.addAlerts([
                spec("AAPL", .above(500), user: "alice"),
                spec("AAPL", .crossesBelow(10), user: "alice"),
                spec("AAPL", .rise(percent: 50, windowSeconds: 3600), user: "alice"),
                spec("AAPL", .riseSinceClose(percent: 50), user: "alice"),
                spec("AAPL", .trailingFall(percent: 50), user: "alice"),
                spec("AAPL", .above(1), user: "alice", state: .paused),
                spec("MSFT", .above(500), user: "alice"),
            ], limitPerUser: nil, now: at(-100))
            // The first run starts the new alerts; the second judges them as followers.
            _ = try store.evaluate(now: at(-90), maxAgeSeconds: 3600, prefilter: true)
            _ = try store.addQuotes([quote("AAPL", 101, at: 0)], fetchedAt: now)
            let report = try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true)
            #expect(report.notifications.isEmpty)
            #expect(report.evaluated == 5)
        }
    }

    /// A quiet run (`detailed: false`) judges and writes the same; only its report is
    /// left out (the count and the list of notifications).
    @Test(arguments: StoreContractTests.backends)
    func aQuietEvaluateWritesTheSame(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("AAPL", 100, at: -120)], fetchedAt: at(-120))
            _ = try store.addAlerts([spec("AAPL", .above(101), user: "alice"), spec("AAPL", .above(500), user: "alice")], limitPerUser: nil, now: at(-100))
            #expect(try store.evaluate(now: at(-90), maxAgeSeconds: 3600, prefilter: true, detailed: false).evaluated == 0)
            _ = try store.addQuotes([quote("AAPL", 101.5, at: -30)], fetchedAt: at(-30))
            let quiet = try store.evaluate(now: at(-30), maxAgeSeconds: 3600, prefilter: true, detailed: false)
            #expect(quiet.evaluated == 0)
            #expect(quiet.notifications.isEmpty)
            let written = try store.notifications(NotificationQuery())
            #expect(written.map(\.price) == [101.5])
            #expect(try store.channelsWithDueDeliveries(now: now) == ["stdout"])
            _ = try store.addQuotes([quote("AAPL", 99, at: 0)], fetchedAt: now)
            let counted = try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true, detailed: true)
            #expect(counted.evaluated == 2)
            #expect(counted.notifications.isEmpty)
        }
    }

    /// Evaluate writes no last firing to an alert: readers and the cooldown take it from
    /// the alert's newest notification.
    @Test(arguments: StoreContractTests.backends)
    func theLastFiringIsTheNewestNotification(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("AAPL", 100, at: -400)], fetchedAt: at(-400))
            var every = spec("AAPL", .above(101), user: "alice")
            every.trigger = .every
            every.cooldownSeconds = 120
            let alert = try #require(try store.addAlerts([every, spec("AAPL", .above(101), user: "alice")], limitPerUser: nil, now: at(-390)).first)
            let id = try #require(alert.id)
            _ = try store.evaluate(now: at(-380), maxAgeSeconds: 3600, prefilter: true)
            #expect(try store.alert(id: id, ownerID: nil).lastFiredAt == nil)
            var fired: [Date?] = []
            // Fires; inside the cooldown (50 s later), not; after it, again.
            for (price, seconds) in [(102.0, -300), (103, -250), (104, -100)] {
                _ = try store.addQuotes([quote("AAPL", price, at: seconds)], fetchedAt: at(seconds))
                _ = try store.evaluate(now: at(seconds), maxAgeSeconds: 3600, prefilter: true, detailed: false)
                fired.append(try store.alert(id: id, ownerID: nil).lastFiredAt)
            }
            #expect(fired == [at(-300), at(-300), at(-100)])
            let notified = try store.notifications(NotificationQuery())
            #expect(notified.filter { $0.alertId == id }.map(\.price) == [104, 102])
            // The list shows what one alert shows; the rearm alert fired once.
            #expect(try store.alerts(AlertQuery()).map(\.lastFiredAt) == [at(-100), at(-300)])
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func evaluateFiresOnceAndTheOutboxLeases(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let bob = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            let alert = try #require(try store.addAlerts([spec("AAPL", .above(100), user: "alice")], limitPerUser: nil, now: at(-60)).first)
            #expect(try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            let start = try store.streamStart()
            #expect(try store.nextDeliveryDue() == nil)

            _ = try store.addQuotes([quote("AAPL", 101.5, at: 0)], fetchedAt: now)
            let report = try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true)
            #expect(report.notifications.count == 1)
            let fired = try #require(report.notifications.first)
            #expect(fired.alertId == alert.id)
            #expect(fired.user == "alice")
            #expect(fired.symbol == "AAPL")
            #expect(fired.price == 101.5)
            #expect(fired.observedAt == now)
            #expect(fired.channels == ["stdout"])
            #expect(!fired.message.isEmpty)
            #expect(report.evaluated == 1)

            // Never twice, whichever way evaluate reads the alerts.
            #expect(try store.evaluate(now: at(1), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            #expect(try store.evaluate(now: at(2), maxAgeSeconds: 3600, prefilter: false).notifications.isEmpty)

            let listed = try store.notifications(NotificationQuery())
            #expect(listed.count == 1)
            let notification = try #require(listed.first)
            #expect(notification.id == fired.id)
            #expect(notification.alertId == alert.id)
            #expect(notification.user == "alice")
            #expect(notification.price == 101.5)
            #expect(notification.observedAt == now)
            #expect(notification.message == fired.message)
            #expect(notification.deliveries.count == 1)
            let pending = try #require(notification.deliveries.first)
            #expect(pending.channel == "stdout")
            #expect(pending.status == .pending)
            #expect(pending.attempts == 0)
            #expect(pending.target == nil)
            #expect(pending.notificationId == fired.id)

            #expect(try store.notifications(NotificationQuery(userID: alice.id)).map(\.id) == [fired.id])
            #expect(try store.notifications(NotificationQuery(userID: bob.id)).isEmpty)
            #expect(try store.notifications(NotificationQuery(symbol: "MSFT")).isEmpty)
            #expect(try store.notifications(NotificationQuery(alertID: alert.id)).map(\.id) == [fired.id])
            #expect(try store.notifications(NotificationQuery(beforeID: fired.id)).isEmpty)
            let streamed = try store.streamBatch(after: start, limit: 10)
            #expect(streamed.notifications.map(\.notification.id) == [fired.id])
            #expect(streamed.notifications.map(\.userID) == [alice.id])
            #expect(streamed.notifications.first?.notification.deliveries.map(\.channel) == ["stdout"])
            #expect(try store.streamBatch(after: streamed.position, limit: 10).notifications.isEmpty)

            // Due now, not before.
            #expect(try store.nextDeliveryDue() == now)
            #expect(try store.channelsWithDueDeliveries(now: now) == ["stdout"])
            #expect(try store.channelsWithDueDeliveries(now: at(-1)).isEmpty)

            // First claim: attempt 1, leased for 60 s.
            let first = try await store.claimDeliveries(channels: ["stdout"], fanOut: [], limit: 10, cutoff: now, leaseUntil: at(60), now: now)
            #expect(first.failed.isEmpty)
            #expect(first.jobs.count == 1)
            let job1 = try #require(first.jobs.first)
            #expect(job1.deliveryID == pending.id)
            #expect(job1.attempt == 1)
            #expect(job1.channel == "stdout")
            #expect(job1.device == nil)
            #expect(job1.notification.id == fired.id)
            #expect(job1.notification.alertId == alert.id)
            #expect(job1.notification.user == "alice")
            #expect(job1.notification.symbol == "AAPL")
            #expect(job1.notification.price == 101.5)
            #expect(job1.notification.observedAt == now)
            #expect(job1.notification.message == fired.message)
            let sending = try #require(try store.notifications(NotificationQuery()).first?.deliveries.first)
            #expect(sending.status == .sending)
            #expect(try store.nextDeliveryDue() == at(60))  // a killed claimer's rows are due when the lease ends
            #expect(sending.attempts == 1)

            // Another channel's claim, or one before the lease ends, gets nothing.
            #expect(try await store.claimDeliveries(channels: ["hook"], fanOut: [], limit: 10, cutoff: at(70), leaseUntil: at(130), now: at(70)).jobs.isEmpty)
            #expect(try store.channelsWithDueDeliveries(now: at(30)).isEmpty)
            let early = try await store.claimDeliveries(channels: ["stdout"], fanOut: [], limit: 10, cutoff: at(30), leaseUntil: at(90), now: at(30))
            #expect(early.jobs.isEmpty && early.failed.isEmpty)
            #expect(try await store.renewClaims([job1.deliveryID: 1], leaseUntil: at(60), now: at(30)) == [job1.deliveryID])

            // After the lease: claimed again, attempt 2; the first claim no longer holds.
            #expect(try store.channelsWithDueDeliveries(now: at(61)) == ["stdout"])
            let retaken = try await store.claimDeliveries(channels: ["stdout"], fanOut: [], limit: 10, cutoff: at(61), leaseUntil: at(121), now: at(61))
            #expect(retaken.jobs.count == 1)
            let job2 = try #require(retaken.jobs.first)
            #expect(job2.deliveryID == job1.deliveryID)
            #expect(job2.attempt == 2)
            #expect(try await store.renewClaims([job1.deliveryID: 1], leaseUntil: at(121), now: at(61)).isEmpty)
            #expect(try await store.renewClaims([job2.deliveryID: 2], leaseUntil: at(121), now: at(61)) == [job2.deliveryID])
            #expect(try await store.renewClaims([:], leaseUntil: at(121), now: at(61)).isEmpty)

            // The overrun run's outcome is dropped; the current one's is written.
            #expect(try await store.recordOutcomes([outcome(job1, .sent)], now: at(62)).isEmpty)
            #expect(try #require(try store.notifications(NotificationQuery()).first?.deliveries.first).status == .sending)
            let recorded = try await store.recordOutcomes([outcome(job2, .sent, next: at(63))], now: at(63))
            #expect(recorded.count == 1)
            #expect(recorded.first?.id == job2.deliveryID)
            #expect(recorded.first?.status == .sent)
            #expect(recorded.first?.attempts == 2)
            #expect(recorded.first?.notificationId == fired.id)
            let sent = try #require(try store.notifications(NotificationQuery()).first?.deliveries.first)
            #expect(sent.status == .sent)
            #expect(sent.attempts == 2)
            #expect(sent.error == nil)
            #expect(try await store.renewClaims([job2.deliveryID: 2], leaseUntil: at(200), now: at(63)).isEmpty)
            // Written once: the same outcome again is dropped.
            #expect(try await store.recordOutcomes([outcome(job2, .failed, error: "late")], now: at(64)).isEmpty)
            #expect(try store.channelsWithDueDeliveries(now: at(10_000)).isEmpty)
            #expect(try store.nextDeliveryDue() == nil)
            #expect(try await store.claimDeliveries(channels: ["stdout"], fanOut: [], limit: 10, cutoff: at(10_000), leaseUntil: at(10_060), now: at(10_000)).jobs.isEmpty)
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func evaluateJudgesOnlyFreshNewQuotesAndExpires(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            // History older than a new alert never fires it: only the symbol's newest quote on.
            _ = try store.addQuotes([quote("AAPL", 150, at: -20), quote("AAPL", 90, at: -10)], fetchedAt: at(-10))
            let aapl = try #require(try store.addAlerts([spec("AAPL", .above(100), user: "alice")], limitPerUser: nil, now: at(-5)).first?.id)
            // A quote older than maxAgeSeconds is never judged.
            let msft = try #require(try store.addAlerts([spec("MSFT", .above(100), user: "alice")], limitPerUser: nil, now: at(-9000)).first?.id)
            _ = try store.addQuotes([quote("MSFT", 150, at: -7200)], fetchedAt: now)
            // An alert past its expiry ends expired, unjudged.
            var expiring = spec("IBM", .above(100), user: "alice")
            expiring.expiresAt = at(-1)
            let ibm = try #require(try store.addAlerts([expiring], limitPerUser: nil, now: at(-100)).first?.id)
            _ = try store.addQuotes([quote("IBM", 150, at: 0)], fetchedAt: now)

            let report = try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true)
            #expect(report.notifications.isEmpty)
            #expect(report.expired == [ibm])
            #expect(try store.alert(id: ibm, ownerID: nil).state == .expired)
            #expect(try store.alert(id: aapl, ownerID: nil).state == .armed)
            #expect(try store.alert(id: msft, ownerID: nil).state == .armed)

            // A fresh quote above the level fires the alert.
            _ = try store.addQuotes([quote("AAPL", 120, at: 0)], fetchedAt: now)
            let fired = try store.evaluate(now: at(1), maxAgeSeconds: 3600, prefilter: false)
            #expect(fired.notifications.map(\.alertId) == [aapl])
            #expect(fired.notifications.map(\.price) == [120])
            #expect(fired.expired.isEmpty)
            #expect(try store.notifications(NotificationQuery()).count == 1)
        }
    }

    /// A resumed alert judges from its symbol's latest quote, as a new one does, and only once:
    /// crossings while it was paused are not judged, the current price is.
    @Test(arguments: StoreContractTests.backends)
    func aResumedAlertJudgesFromTheLatestQuoteOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addQuotes([quote("AAPL", 90, at: -30)], fetchedAt: at(-30))
            let id = try #require(try store.addAlerts([spec("AAPL", .above(100), user: "alice")], limitPerUser: nil, now: at(-29)).first?.id)
            #expect(try store.evaluate(now: at(-28), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            _ = try store.changeAlertState(id: id) { _ in .paused }
            _ = try store.addQuotes([quote("AAPL", 130, at: -20), quote("AAPL", 120, at: -10)], fetchedAt: at(-10))
            #expect(try store.evaluate(now: at(-9), maxAgeSeconds: 3600, prefilter: true).notifications.isEmpty)
            _ = try store.changeAlertState(id: id) { _ in .armed }
            let resumed = try store.evaluate(now: at(-8), maxAgeSeconds: 3600, prefilter: true)
            #expect(resumed.notifications.map(\.price) == [120])
            #expect(try store.alert(id: id, ownerID: nil).state == .firing)
            #expect(try store.evaluate(now: at(-7), maxAgeSeconds: 3600, prefilter: false).notifications.isEmpty)
            #expect(try store.notifications(NotificationQuery()).count == 1)
        }
    }

    @Test(arguments: StoreContractTests.backends)
    func fanOutMakesOneJobPerActiveDevice(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let bob = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            let phone1 = try store.registerDevice(user: "alice", fcmToken: "tok-1", label: nil, limitPerUser: nil, now: now)
            let phone2 = try store.registerDevice(user: "alice", fcmToken: "tok-2", label: nil, limitPerUser: nil, now: now)
            let aliceAlert = try #require(try store.addAlerts([spec("AAPL", .above(100), user: "alice", channels: ["phone"])], limitPerUser: nil, now: at(-60)).first?.id)
            let bobAlert = try #require(try store.addAlerts([spec("AAPL", .above(100), user: "bob", channels: ["phone"])], limitPerUser: nil, now: at(-60)).first?.id)
            _ = try store.addQuotes([quote("AAPL", 150, at: 0)], fetchedAt: now)
            let fired = try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true).notifications
            #expect(Set(fired.map(\.alertId)) == [aliceAlert, bobAlert])
            let aliceNotification = try #require(fired.first { $0.alertId == aliceAlert }?.id)
            let bobNotification = try #require(fired.first { $0.alertId == bobAlert }?.id)
            #expect(try store.channelsWithDueDeliveries(now: now) == ["phone"])
            let aliceWaiting = try #require(try store.notifications(NotificationQuery(userID: alice.id)).first?.deliveries.first?.id)

            let claim = try await store.claimDeliveries(channels: ["phone"], fanOut: ["phone"], limit: 10, cutoff: now, leaseUntil: at(60), now: now)
            // The waiting row became the first phone's, keeping its id (nothing deleted).
            #expect(claim.jobs.first?.deliveryID == aliceWaiting)
            // Alice's one delivery became one per device; bob has none, so his failed.
            #expect(claim.jobs.count == 2)
            #expect(claim.jobs.map(\.device?.id) == [phone1.id, phone2.id])
            #expect(claim.jobs.map(\.device?.fcmToken) == ["tok-1", "tok-2"])
            #expect(claim.jobs.allSatisfy { $0.device?.active == true })
            #expect(claim.jobs.allSatisfy { $0.attempt == 1 && $0.channel == "phone" && $0.target != nil })
            #expect(claim.jobs.allSatisfy { $0.notification.id == aliceNotification && $0.notification.user == "alice" })
            #expect(Set(claim.jobs.map(\.deliveryID)).count == 2)
            #expect(claim.failed.count == 1)
            let noDevice = try #require(claim.failed.first)
            #expect(noDevice.notificationId == bobNotification)
            #expect(noDevice.status == .failed)
            #expect(noDevice.channel == "phone")
            #expect(noDevice.error == DeliveryReason.noDevice)

            let aliceDeliveries = try #require(try store.notifications(NotificationQuery(userID: alice.id)).first?.deliveries)
            #expect(aliceDeliveries.map(\.id).sorted() == claim.jobs.map(\.deliveryID).sorted())
            #expect(aliceDeliveries.allSatisfy { $0.status == .sending && $0.attempts == 1 })
            let bobDeliveries = try #require(try store.notifications(NotificationQuery(userID: bob.id)).first?.deliveries)
            #expect(bobDeliveries.map(\.status) == [.failed])
            #expect(try await store.renewClaims([claim.jobs[0].deliveryID: 1, claim.jobs[1].deliveryID: 1], leaseUntil: at(60), now: at(5)) == Set(claim.jobs.map(\.deliveryID)))

            // A token that moves to another user ends its claim: the outcome is dropped.
            _ = try store.registerDevice(user: "bob", fcmToken: "tok-1", label: nil, limitPerUser: nil, now: at(10))
            #expect(try await store.renewClaims([claim.jobs[0].deliveryID: 1, claim.jobs[1].deliveryID: 1], leaseUntil: at(60), now: at(10)) == [claim.jobs[1].deliveryID])
            #expect(try await store.recordOutcomes([outcome(claim.jobs[0], .sent)], now: at(11)).isEmpty)

            // A dead token deactivates its device.
            let dead = try await store.recordOutcomes([outcome(claim.jobs[1], .failed, error: "UNREGISTERED", deactivate: true)], now: at(12))
            #expect(dead.map(\.status) == [.failed])
            let phone2Now = try #require(try store.devices(user: "alice", afterID: nil, limit: nil).first { $0.id == phone2.id })
            #expect(!phone2Now.active)
            #expect(phone2Now.deactivatedReason == "UNREGISTERED")
            let endStates = try #require(try store.notifications(NotificationQuery(userID: alice.id)).first?.deliveries)
            #expect(endStates.map(\.status) == [.failed, .failed])
            #expect(Set(endStates.compactMap(\.error)) == [DeliveryReason.deviceMoved, "UNREGISTERED"])

            // Alice now has no active device: her next fan-out fails.
            _ = try store.addQuotes([quote("AAPL", 90, at: 20), quote("AAPL", 160, at: 30)], fetchedAt: at(30))
            let again = try store.evaluate(now: at(30), maxAgeSeconds: 3600, prefilter: true).notifications
            #expect(again.map(\.alertId).contains(aliceAlert))
            let second = try await store.claimDeliveries(channels: ["phone"], fanOut: ["phone"], limit: 10, cutoff: at(30), leaseUntil: at(90), now: at(30))
            let aliceFailed = second.failed.filter { failed in again.contains { $0.id == failed.notificationId && $0.alertId == aliceAlert } }
            #expect(aliceFailed.count == 1)
            #expect(aliceFailed.first?.error == DeliveryReason.noDevice)
            // Bob now has tok-1: his delivery fans out to it.
            #expect(second.jobs.map(\.device?.fcmToken) == ["tok-1"])
            #expect(second.jobs.allSatisfy { $0.notification.user == "bob" })
        }
    }

    // MARK: AccessTokenStore

    @Test(arguments: StoreContractTests.backends)
    func accessTokensAreSavedAndReplaced(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try store.accessToken(account: "a@example.iam") == nil)
            #expect(try store.accessTokenExpiries().isEmpty)

            try store.saveAccessToken(account: "a@example.iam", token: "ya29.first", expiresAt: at(3600))
            try store.saveAccessToken(account: "b@example.iam", token: "ya29.other", expiresAt: at(1800))
            let a = try #require(try store.accessToken(account: "a@example.iam"))
            #expect(a.token == "ya29.first")
            #expect(a.expiresAt == at(3600))
            #expect(try store.accessTokenExpiries() == ["a@example.iam": at(3600), "b@example.iam": at(1800)])

            try store.saveAccessToken(account: "a@example.iam", token: "ya29.second", expiresAt: at(7200))
            let replaced = try #require(try store.accessToken(account: "a@example.iam"))
            #expect(replaced.token == "ya29.second")
            #expect(replaced.expiresAt == at(7200))
            #expect(try store.accessToken(account: "b@example.iam")?.token == "ya29.other")
            #expect(try store.accessTokenExpiries() == ["a@example.iam": at(7200), "b@example.iam": at(1800)])
            #expect(try store.accessToken(account: "c@example.iam") == nil)
        }
    }

    // MARK: HealthStore

    @Test(arguments: StoreContractTests.backends)
    func deliveryHealthCountsAndFailedAttempts(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let empty = try store.deliveryHealth(overdueBefore: now, deadSince: at(-3600))
            #expect(empty.counts.values.reduce(0, +) == 0)
            #expect(empty.overdue == 0 && empty.recentlyDead == 0)
            #expect(try store.recentFailedAttempts(limit: 10).isEmpty)

            _ = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addAlerts([spec("AAPL", .above(100), user: "alice", channels: ["stdout", "hook", "pager"])], limitPerUser: nil, now: at(-60))
            _ = try store.addQuotes([quote("AAPL", 150, at: 0)], fetchedAt: now)
            #expect(try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true).notifications.count == 1)

            let waiting = try store.deliveryHealth(overdueBefore: at(1), deadSince: at(-3600))
            #expect(waiting.count(.pending) == 3)
            #expect(waiting.overdue == 3)
            #expect(try store.deliveryHealth(overdueBefore: at(-1), deadSince: at(-3600)).overdue == 0)

            let claim = try await store.claimDeliveries(channels: ["stdout", "hook", "pager"], fanOut: [], limit: 10, cutoff: now, leaseUntil: at(60), now: now)
            #expect(claim.jobs.count == 3)
            let leased = try store.deliveryHealth(overdueBefore: at(1), deadSince: at(-3600))
            #expect(leased.count(.sending) == 3)
            #expect(leased.count(.pending) == 0)
            #expect(leased.overdue == 0)
            #expect(try store.deliveryHealth(overdueBefore: at(61), deadSince: at(-3600)).overdue == 3)

            let jobs = Dictionary(uniqueKeysWithValues: claim.jobs.map { ($0.channel, $0) })
            let stdout = try #require(jobs["stdout"])
            let hook = try #require(jobs["hook"])
            let pager = try #require(jobs["pager"])
            let recorded = try await store.recordOutcomes(
                [outcome(stdout, .retry, next: at(300), error: "timed out"), outcome(hook, .failed, error: "HTTP 400"), outcome(pager, .dead, error: "gave up")],
                now: at(5))
            #expect(recorded.map(\.status) == [.retry, .failed, .dead])

            let health = try store.deliveryHealth(overdueBefore: at(10), deadSince: at(-3600))
            #expect(health.count(.retry) == 1)
            #expect(health.count(.failed) == 1)
            #expect(health.count(.dead) == 1)
            #expect(health.count(.sending) == 0)
            #expect(health.count(.sent) == 0)
            #expect(health.overdue == 0)
            #expect(health.recentlyDead == 1)
            #expect(try store.deliveryHealth(overdueBefore: at(301), deadSince: at(-3600)).overdue == 1)
            #expect(try store.deliveryHealth(overdueBefore: at(10), deadSince: at(6)).recentlyDead == 0)
            // The retry is due again at its time.
            #expect(try store.channelsWithDueDeliveries(now: at(299)).isEmpty)
            #expect(try store.channelsWithDueDeliveries(now: at(300)) == ["stdout"])

            let failures = try store.recentFailedAttempts(limit: 10)
            #expect(failures.map(\.channel) == ["pager", "hook", "stdout"])
            #expect(failures.map(\.outcome) == ["dead", "failed", "retry"])
            #expect(failures.map(\.error) == ["gave up", "HTTP 400", "timed out"])
            #expect(failures.map(\.deliveryId) == [pager.deliveryID, hook.deliveryID, stdout.deliveryID])
            #expect(failures.allSatisfy { $0.attempt == 1 && $0.at == at(5) })
            #expect(try store.recentFailedAttempts(limit: 1).map(\.channel) == ["pager"])

            // A send that succeeds is not a failure.
            let retry = try await store.claimDeliveries(channels: ["stdout"], fanOut: [], limit: 10, cutoff: at(300), leaseUntil: at(360), now: at(300))
            let job = try #require(retry.jobs.first)
            #expect(job.attempt == 2)
            #expect(try await store.recordOutcomes([outcome(job, .sent)], now: at(301)).map(\.status) == [.sent])
            #expect(try store.recentFailedAttempts(limit: 10).count == 3)
            #expect(try store.deliveryHealth(overdueBefore: at(400), deadSince: at(-3600)).count(.sent) == 1)
            // Counted from the partial indexes (v22; PostgreSQL v16) and the rest as sent.
            #expect(try store.deliveryHealth(overdueBefore: at(400), deadSince: at(-3600)).counts == ["sent": 1, "failed": 1, "dead": 1])

            #expect(try store.newestObservedAt(symbols: ["AAPL", "MSFT"]) == ["AAPL": now])
        }
    }
}
