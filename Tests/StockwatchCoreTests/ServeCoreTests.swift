import Foundation
import Synchronization
import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchServer
@testable import StockwatchStore
import PostgresNIO

struct ServeCoreTests {
    @Test(arguments: [
        (#"{"type":"subscribe","symbols":["aapl","EUR/USD","AAPL"]}"#, StreamMessage.Request.subscribe(["AAPL", "EUR/USD"])),
        (#"{"type":"unsubscribe","symbols":["MSFT"]}"#, .unsubscribe(["MSFT"])),
    ])
    func streamRequestsAreParsedWithCanonicalSymbols(_ text: String, _ expected: StreamMessage.Request) throws {
        #expect(try StreamMessage.Request.parse(text) == expected)
    }

    @Test(arguments: [
        ("", "not a JSON object"), ("[1]", "not a JSON object"), (#"{"symbols":["AAPL"]}"#, "missing \"type\""),
        (#"{"type":"dance","symbols":["AAPL"]}"#, "one of subscribe, unsubscribe"),
        (#"{"type":"subscribe"}"#, "non-empty array"), (#"{"type":"subscribe","symbols":[]}"#, "non-empty array"),
        (#"{"type":"subscribe","symbols":[1]}"#, "non-empty array"), (#"{"type":"subscribe","symbols":["no way"]}"#, "symbols"),
    ])
    func badStreamRequestsSayWhatIsWrong(_ text: String, _ fragment: String) {
        let error = expectError { _ = try StreamMessage.Request.parse(text) }
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "no error")")
    }

    @Test func streamMessagesCarryTheirTypeBesideTheObjectsOwnKeys() throws {
        let quote = QuoteJSON(symbol: "AAPL", price: 201.5, provider: "finnhub", observedAt: Date(timeIntervalSince1970: 1_700_000_000))
        let object = try JSONSerialization.jsonObject(with: Data(StreamMessage.quote(quote).utf8)) as? [String: Any]
        #expect(object?["type"] as? String == "quote")
        #expect(object?["observed_at"] as? String == "2023-11-14T22:13:20Z")
        #expect(Set(object?.keys.map { $0 } ?? []) == ["type", "symbol", "price", "provider", "observed_at"])
    }

    @Test func serveSettingsAreReadAndCheckedWithTheirKey() throws {
        let config = try ConfigLoader.parse(
            "[serve]\nlisten = \"[::1]:9090\"\nmax_connections_per_user = 3\nallowed_origins = [\"https://app.example.com\"]\n",
            file: "c.toml", environment: [:])
        #expect(config.serve.listen == ListenAddress(host: "::1", port: 9090))
        #expect(config.serve.listen.description == "[::1]:9090")
        #expect(config.serve.maxConnectionsPerUser == 3)
        #expect(config.serve.allowedOrigins == ["https://app.example.com"])
        #expect(try ConfigLoader.parse("", file: "c.toml", environment: [:]).serve.listen.description == "127.0.0.1:8080")
        for (text, key) in [
            ("[serve]\nlisten = \"8080\"\n", "listen"), ("[serve]\nlisten = \"host:99999\"\n", "listen"),
            ("[serve]\nmax_connections_per_user = 0\n", "max_connections_per_user"),
            ("[serve]\nallowed_origins = [\"https://app.example.com/path\"]\n", "allowed_origins"),
            ("[serve]\nallowed_origins = [\"app.example.com\"]\n", "allowed_origins"), ("[serve]\nport = 1\n", "port"),
        ] {
            let error = expectError { _ = try ConfigLoader.parse(text, file: "c.toml", environment: [:]) }
            #expect(error?.exitStatus == .config)
            #expect(error?.message.contains(key) == true, "\(error?.message ?? "no error")")
        }
    }

    @Test func apiAlertsUseOnlyChannelsOpenToTheAPI() throws {
        let config = try ConfigLoader.parse("""
            [alerts]
            default_notify = ["pager", "stdout"]
            [channels.pager]
            type = "exec"
            command = ["/bin/true"]
            """, file: "c.toml", environment: [:])
        #expect(config.apiChannelNames == ["stdout"])  // fcm and stdout channels only, by default
        #expect(try APIRoutes.apiChannels(nil, config: config) == ["stdout"])
        let refused = expectError { _ = try APIRoutes.apiChannels(["pager"], config: config) }
        #expect(refused?.message.contains("not a channel open to the API") == true)
        let opened = try ConfigLoader.parse("[serve]\napi_channels = [\"pager\"]\n[channels.pager]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n", file: "c.toml", environment: [:])
        #expect(try APIRoutes.apiChannels(nil, config: opened) == ["pager"])
        let unknown = expectError { _ = try ConfigLoader.parse("[serve]\napi_channels = [\"nope\"]\n", file: "c.toml", environment: [:]) }
        #expect(unknown?.message.contains("api_channels") == true)
    }

    @Test func onlyBrowserOriginsAreChecked() {
        #expect(OriginCheck.isBrowserOrigin("https://evil.example"))
        #expect(OriginCheck.isBrowserOrigin("null"))
        #expect(!OriginCheck.isBrowserOrigin("ws://127.0.0.1"))
    }

    @Test func aClientThatStopsReadingIsDroppedInsteadOfBufferedWithoutBound() async throws {
        let store = try TemporaryStore()
        let hub = StreamHub(history: HistoryService(database: store.database), maxConnectionsPerUser: 2, pollInterval: .milliseconds(250))
        let alice = AuthenticatedUser(id: 1, name: "alice", tokenHash: APIToken.hash("sw_alice"))
        let closed = Mutex(false)
        let slow = try #require(await hub.register(alice) { closed.withLock { $0 = true } })
        _ = try #require(await hub.register(alice))
        #expect(await hub.register(alice) == nil)  // the per-user limit

        for n in 0..<(StreamHub.clientBuffer + 10) { await hub.send("message \(n)", to: slow.id) }
        #expect(closed.withLock { $0 })  // its connection was closed, not just its queue
        var received = 0
        for await _ in slow.outbox { received += 1 }  // ends: the hub dropped the client
        #expect(received == StreamHub.clientBuffer)
        #expect(await hub.register(alice) != nil)  // its slot is free again
    }

    @Test func theSymbolLimitCountsDistinctSymbols() async throws {
        let store = try TemporaryStore()
        let hub = StreamHub(history: HistoryService(database: store.database), maxConnectionsPerUser: 1, pollInterval: .milliseconds(250))
        let client = try #require(await hub.register(AuthenticatedUser(id: 1, name: "alice", tokenHash: APIToken.hash("sw_alice"))))
        let first = await hub.subscribe(client.id, to: ["AAPL", "MSFT"], limit: 2)
        #expect(first?.all == ["AAPL", "MSFT"] && first?.added == ["AAPL", "MSFT"])
        let again = await hub.subscribe(client.id, to: ["AAPL"], limit: 2)  // still 2, nothing new
        #expect(again?.all == ["AAPL", "MSFT"] && again?.added == [])
        #expect(await hub.subscribe(client.id, to: ["IBM"], limit: 2) == nil)
        #expect(await hub.unsubscribe(client.id, from: ["MSFT"]) == ["AAPL"])
        #expect(await hub.subscribe(client.id, to: ["IBM"], limit: 2)?.all == ["AAPL", "IBM"])
    }
}

/// serve on PostgreSQL: hubs woken by the commits' NOTIFY, in every instance.
@Suite(.enabled(if: TestPostgres.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
struct StreamHubPostgresTests {
    /// Two instances (hubs on stores of their own) that would poll only once a minute: a
    /// quote another process commits reaches a client of each within a second, because the
    /// commit wakes them. Then one instance's listening connection is killed and a quote
    /// committed while it reconnects still reaches its client: it reads what it missed.
    @Test func everyInstanceIsWokenByACommitAndCatchesUpAfterItsListenerDrops() async throws {
        let writer = try await TestPostgres.newStore()
        let location = (writer as! PostgresStore).server
        let now = Date()
        let alice = try writer.addUser(name: "alice", tokenHash: APIToken.hash("sw_alice"), now: now)
        var runs: [Task<Void, any Error>] = []
        final class Received: Sendable { let texts = Mutex<[[String]]>([[], []]) }
        let received = Received()
        for index in 0..<2 {
            let store = try await Task.detached { try PostgresStore(location, connections: .pool(maximum: 2)) }.value
            let hub = StreamHub(history: HistoryService(database: store), maxConnectionsPerUser: 2, pollInterval: .seconds(60))
            try await hub.start()
            runs.append(Task { try await hub.run() })
            let client = try #require(await hub.register(AuthenticatedUser(id: alice.id, name: "alice", tokenHash: APIToken.hash("sw_alice"))))
            _ = await hub.subscribe(client.id, to: ["AAPL"], limit: 10)
            runs.append(Task {
                for await case .text(let text) in client.outbox { received.texts.withLock { $0[index].append(text) } }
            })
        }
        defer { for run in runs { run.cancel() } }
        func arrived(_ price: String) async -> Bool {
            for _ in 0..<500 {
                if received.texts.withLock({ $0.allSatisfy { $0.contains { $0.contains(price) } } }) { return true }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        // As serve does, each hub has read where its stream starts before a client came.
        try await waitForListeners(location) { $0 == 2 }
        let started = ContinuousClock.now
        _ = try writer.addQuotes([QuoteJSON(symbol: "AAPL", price: 101, provider: "stooq", observedAt: now)], fetchedAt: now)
        #expect(await arrived("101"))
        #expect(ContinuousClock.now - started < .seconds(1))

        // The listeners are cut; a quote commits before they listen again.
        try await PostgresDatabase.withConnection(location) { connection in
            try await connection.query("""
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()
                """, logger: PostgresDatabase.logger)
        }
        try await waitForListeners(location) { $0 == 0 }
        _ = try writer.addQuotes([QuoteJSON(symbol: "AAPL", price: 102, provider: "stooq", observedAt: now.addingTimeInterval(1))], fetchedAt: now)
        #expect(await arrived("102"))
    }

    private func waitForListeners(_ location: PostgresLocation, until done: @escaping @Sendable (Int) -> Bool) async throws {
        let listening = try await PostgresDatabase.withConnection(location) { connection in
            for _ in 0..<500 {
                for try await n in try await connection.query(
                    "SELECT count(*)::INT FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()", logger: PostgresDatabase.logger
                ).decode(Int.self) where done(n) { return true }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        #expect(listening)
    }
}

@Suite struct RouteTableTests {
    /// The table that answers 405 lists what openapi.yaml documents, path by path.
    @Test func theRouteTableIsOpenAPIsPathsAndMethods() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let yaml = try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        var documented: [String: [String]] = [:]
        var path: String?
        for line in yaml.split(separator: "\n") {
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
                documented[path!] = []
            } else if let current = path, line.hasPrefix("    "), !line.hasPrefix("     "),
                let method = ["get", "post", "put", "patch", "delete"].first(where: { line == "    \($0):" }) {
                documented[current]!.append(method.uppercased())
            } else if !line.hasPrefix(" ") {
                path = nil
            }
        }
        let table = Dictionary(uniqueKeysWithValues: APIServer.routes.map { ($0.path, $0.methods.sorted()) })
        #expect(table == documented.mapValues { $0.sorted() })
        #expect(APIServer.methods(forPath: "/v1/alerts/17") == ["GET", "DELETE"])
        #expect(APIServer.methods(forPath: "/v1/alerts/") == [])
        #expect(APIServer.methods(forPath: "/v1/nothing") == [])
    }
}
