import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// `stockwatch serve` as the mobile app sees it: the built binary on 127.0.0.1 port 0,
/// AsyncHTTPClient for the API, and a real WebSocket client for the stream.
@Suite(.serialized) struct ServeTests {
    @Test func everyRouteButHealthzNeedsTheTokenAndEachUserSeesOnlyTheirOwn() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice"), bob = try sandbox.addUser("bob")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        #expect(try await server.request("GET", "/healthz").status == 200)
        for token in [nil, "sw_wrong", bob + "x"] {
            let answer = try await server.request("GET", "/v1/alerts", token: token)
            #expect(answer.status == 401)
            #expect(answer.errorCode == "unauthorized")
        }

        let created = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"aapl","condition":{"kind":"above","value":200},"note":"buy"}"#)
        #expect(created.status == 201)
        let alert = try #require(created.object)
        #expect(alert["symbol"] as? String == "AAPL")
        #expect(alert["user"] as? String == "alice")
        let id = try #require(alert["id"] as? Int)

        let list = try await server.request("GET", "/v1/alerts", token: alice)
        #expect((list.array ?? []).count == 1)
        #expect(try await server.request("GET", "/v1/alerts", token: bob).array?.count == 0)
        let shown = try await server.request("GET", "/v1/alerts/\(id)", token: alice)

        // Another user's alert does not exist for bob, and his DELETE changes nothing.
        for method in ["GET", "DELETE"] {
            let answer = try await server.request(method, "/v1/alerts/\(id)", token: bob)
            #expect(answer.status == 404)
        }
        #expect(try sandbox.count("alerts") == 1)

        let device = try await server.request("POST", "/v1/devices", token: alice, body: #"{"fcm_token":"fcm-alice-1","label":"Pixel"}"#)
        #expect(device.status == 200)
        let deviceID = try #require(device.object?["id"] as? Int)
        let devices = try await server.request("GET", "/v1/devices", token: alice)
        #expect(devices.array?.count == 1)
        #expect(try await server.request("DELETE", "/v1/devices/\(deviceID)", token: bob).status == 404)
        #expect(try sandbox.count("devices") == 1)
        let removedDevice = try await server.request("DELETE", "/v1/devices/\(deviceID)", token: alice)
        #expect(removedDevice.status == 200)
        #expect(try sandbox.count("devices") == 0)

        let removed = try await server.request("DELETE", "/v1/alerts/\(id)", token: alice)
        #expect(removed.status == 200)
        #expect(try sandbox.count("alerts") == 0)
    }

    /// A notification's buttons: pause and resume one of the user's alerts; another
    /// user's id is 404 and changes nothing; an alert that cannot pause is 422.
    @Test func anAlertIsPausedAndResumedFromTheAppOnlyByItsUser() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice"), bob = try sandbox.addUser("bob")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let created = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"AAPL","condition":{"kind":"above","value":200},"trigger":"once"}"#)
        let id = try #require(created.object?["id"] as? Int)
        func state() throws -> String? {
            (try sandbox.run(["alert", "show", "\(id)", "--json"]).json() as? [String: Any])?["state"] as? String
        }

        for verb in ["pause", "resume"] {
            let foreign = try await server.request("POST", "/v1/alerts/\(id)/\(verb)", token: bob)
            #expect(foreign.status == 404 && foreign.errorCode == "not_found")
            #expect(try state() == "armed")
        }
        let paused = try await server.request("POST", "/v1/alerts/\(id)/pause", token: alice)
        #expect(paused.status == 200 && paused.object?["state"] as? String == "paused")
        #expect(try state() == "paused")
        #expect(try await server.request("POST", "/v1/alerts/\(id)/pause", token: alice).object?["state"] as? String == "paused")
        let resumed = try await server.request("POST", "/v1/alerts/\(id)/resume", token: alice)
        #expect(resumed.status == 200 && resumed.object?["state"] as? String == "armed")
        #expect(try state() == "armed")
        #expect(try await server.request("GET", "/v1/alerts/\(id)/pause", token: alice).status == 405)
        #expect(try await server.request("POST", "/v1/alerts/999999/pause", token: alice).status == 404)

        // A once alert that fired cannot be paused: 422, and it stays fired. (A resumed
        // alert starts at the newest quote: the first evaluate starts it, the next judges.)
        let now = Int(Date().timeIntervalSince1970)
        try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,150,\(now + 1)\n")
        try sandbox.run(["evaluate"])
        try sandbox.run(["fetch", "--from", "-"], stdin: "AAPL,201,\(now + 2)\n")
        try sandbox.run(["evaluate"])
        #expect(try state() == "fired")
        let refused = try await server.request("POST", "/v1/alerts/\(id)/pause", token: alice)
        #expect(refused.status == 422)
        #expect(try state() == "fired")
    }

    @Test func badRequestsGetTheirStatusAndChangeNothing() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let before = try sandbox.snapshot()
        let cases: [(String, String, String?, Int, String)] = [
            ("POST", "/v1/alerts", "not json", 400, "invalid_input"),
            ("POST", "/v1/alerts", #"{"symbol":"AAPL","condition":{"kind":"above","value":-1}}"#, 422, "invalid_value"),
            ("POST", "/v1/alerts", #"{"symbol":"AAPL","cooldown":"5m","condition":{"kind":"above","value":1}}"#, 422, "invalid_value"),
            ("POST", "/v1/alerts", #"{"symbol":"AAPL","condition":{"kind":"sideways","value":1}}"#, 422, "usage"),
            ("POST", "/v1/alerts", #"{"symbol":"AAPL","condition":{"kind":"above","value":1},"channels":["nope"]}"#, 422, "invalid_value"),
            ("POST", "/v1/alerts", #"{"symbol":"NOT A SYMBOL","condition":{"kind":"above","value":1}}"#, 422, "invalid_value"),
            ("POST", "/v1/alerts", "{\"note\":\"" + String(repeating: "x", count: 70_000) + "\"}", 413, "too_large"),
            ("POST", "/v1/devices", #"{"fcm_token":"has space"}"#, 422, "invalid_value"),
            ("POST", "/v1/devices", #"{"label":"no token"}"#, 422, "usage"),
            ("GET", "/v1/alerts/999", nil, 404, "not_found"),
            ("GET", "/v1/alerts/abc", nil, 400, "http_400"),
            ("GET", "/v1/quotes", nil, 422, "invalid_value"),
            ("GET", "/v1/quotes?symbols=AAPL,%20", nil, 422, "invalid_value"),
            ("GET", "/v1/notifications?since=yesterday", nil, 422, "invalid_value"),
            ("GET", "/v1/notifications?limit=0", nil, 422, "invalid_value"),
            ("GET", "/v1/stream", nil, 426, "upgrade_required"),
            ("GET", "/v1/nothing-here", nil, 404, "not_found"),
        ]
        for (method, path, body, status, code) in cases {
            let answer = try await server.request(method, path, token: alice, body: body)
            #expect(answer.status == status, "\(method) \(path) \(body?.prefix(60) ?? "")")
            #expect(answer.errorCode == code, "\(method) \(path): \(String(decoding: answer.body, as: UTF8.self))")
        }
        #expect(try sandbox.snapshot() == before)
    }

    @Test func browserOriginsOutsideTheAllowListAreRefused() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        sandbox.writeConfig(#"[serve]\#nallowed_origins = ["https://app.example.com"]\#n"#)
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let refused = try await server.request("GET", "/v1/alerts", token: alice, headers: ["Origin": "https://evil.example"])
        #expect(refused.status == 403)
        #expect(refused.errorCode == "forbidden_origin")
        let allowed = try await server.request("GET", "/v1/alerts", token: alice, headers: ["Origin": "https://app.example.com"])
        #expect(allowed.status == 200)
        #expect(allowed.headers["Access-Control-Allow-Origin"].first == "https://app.example.com")
        // Errors keep their status and JSON body under CORS.
        let missing = try await server.request("GET", "/v1/alerts/42", token: alice, headers: ["Origin": "https://app.example.com"])
        #expect(missing.status == 404)
        #expect(missing.errorCode == "not_found")
        #expect(missing.headers["Access-Control-Allow-Origin"].first == "https://app.example.com")
        let wrongToken = try await server.request("GET", "/v1/alerts", token: "sw_wrong", headers: ["Origin": "https://app.example.com"])
        #expect(wrongToken.status == 401)
        // A preflight from elsewhere is refused; one from the app is answered.
        #expect(try await server.request("OPTIONS", "/v1/alerts", headers: ["Origin": "https://evil.example", "Access-Control-Request-Method": "POST"]).status == 403)
        let preflight = try await server.request("OPTIONS", "/v1/alerts", headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"])
        #expect(preflight.headers["Access-Control-Allow-Methods"].first?.contains("POST") == true)

        // Browsers authenticate the stream with a subprotocol (they cannot set headers).
        let stream = try await StreamClient.connect(server, token: nil, headers: [
.secWebSocketProtocol: "stockwatch.bearer, \(alice)"])
        await stream.send(#"{"type":"subscribe","symbols":["AAPL"]}"#)
        _ = try await stream.next { $0["type"] as? String == "subscribed" }
        await stream.close()
        await #expect(throws: (any Error).self) {
            _ = try await StreamClient.connect(server, token: nil, headers: [.secWebSocketProtocol: "stockwatch.bearer, sw_wrong"])
        }
    }

    @Test func badServeFlagsExit64BeforeTheDatabaseIsCreated() throws {
        let sandbox = try Sandbox()
        for arguments in [["--listen", "8080"], ["--listen", "127.0.0.1:70000"], ["--allowed-origin", "app.example.com"], ["--allowed-origin", "https://a.example/path"]] {
            let result = try sandbox.run(["serve"] + arguments)
            #expect(result.status == 64, "\(arguments)")
            #expect(result.stderr.hasPrefix("stockwatch: error: invalid value '\(arguments[1])' for \(arguments[0])"), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        #expect(!FileManager.default.fileExists(atPath: sandbox.db))
    }

    @Test func aPortInUseExits69AndSaysWhichAddress() throws {
        let sandbox = try Sandbox()
        let first = try ServeProcess(sandbox)
        defer { first.stop() }
        let result = try sandbox.run(["serve", "--listen", "127.0.0.1:\(first.port)"])
        #expect(result.status == 69)
        #expect(result.stderr.contains("cannot listen on 127.0.0.1:\(first.port)"), "\(result.stderr)")
    }

    @Test func theAllowedOriginFlagReplacesTheConfigList() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        sandbox.writeConfig(#"[serve]\#nallowed_origins = ["https://app.example.com"]\#n"#)
        let server = try ServeProcess(sandbox, arguments: ["--allowed-origin", "https://other.example.com"])
        defer { server.stop() }
        #expect(try await server.request("GET", "/v1/alerts", token: alice, headers: ["Origin": "https://app.example.com"]).status == 403)
        #expect(try await server.request("GET", "/v1/alerts", token: alice, headers: ["Origin": "https://other.example.com"]).status == 200)
    }

    /// On each backend (PostgreSQL when PGHOST is set; see BackendEndToEndTests).
    @Test(arguments: BackendEndToEndTests.backends)
    func aSubscriberReceivesNewQuotesAndItsOwnNotificationsWithinOneSecond(_ backend: String) async throws {
        let sandbox = try Sandbox(backend: backend)
        let alice = try sandbox.addUser("alice"), bob = try sandbox.addUser("bob")
        let now = Date()
        try sandbox.fetch([("AAPL", 150, now.addingTimeInterval(-300)), ("MSFT", 300, now.addingTimeInterval(-300))])
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        let aliceStream = try await StreamClient.connect(server, token: alice)
        let bobStream = try await StreamClient.connect(server, token: bob)
        await aliceStream.send(#"{"type":"subscribe","symbols":["aapl"]}"#)
        let subscribed = try await aliceStream.next { $0["type"] as? String == "subscribed" }
        #expect(subscribed["symbols"] as? [String] == ["AAPL"])
        // Right after subscribing: the newest stored quote, so the app has a price at once.
        let first = try await aliceStream.next { $0["type"] as? String == "quote" }
        #expect(first["price"] as? Double == 150)
        await bobStream.send(#"{"type":"subscribe","symbols":["MSFT"]}"#)
        _ = try await bobStream.next { $0["type"] as? String == "quote" }

        // Another process commits new quotes: each subscriber gets its own symbol's.
        try sandbox.fetch([("AAPL", 160, now.addingTimeInterval(-120)), ("MSFT", 310, now.addingTimeInterval(-120))])
        let committed = Date()
        let quote = try await aliceStream.next { $0["type"] as? String == "quote" }
        #expect(Date().timeIntervalSince(committed) < 1)
        #expect(quote["symbol"] as? String == "AAPL")
        #expect(quote["price"] as? Double == 160)
        #expect(Set(quote.keys) == ["type", "symbol", "price", "provider", "observed_at"])

        // A notification of alice's reaches alice's stream, with the id history shows.
        let created = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"AAPL","condition":{"kind":"above","value":100}}"#)
        #expect(created.status == 201)
        let evaluated = try sandbox.run(["evaluate", "--json"])
        #expect(evaluated.status == 0)
        let notificationID = try #require(((try evaluated.json() as? [String: Any])?["notifications"] as? [[String: Any]])?.first?["id"] as? Int)
        let notification = try await aliceStream.next { $0["type"] as? String == "notification" }
        #expect(notification["id"] as? Int == notificationID)
        #expect(notification["user"] as? String == "alice")
        let history = try await server.request("GET", "/v1/notifications", token: alice)
        #expect(history.array?.first?["id"] as? Int == notificationID)
        #expect(try await server.request("GET", "/v1/notifications", token: bob).array?.count == 0)

        // Bob got only his MSFT quote: no AAPL, and not alice's notification.
        let msft = try await bobStream.next { $0["type"] as? String == "quote" }
        #expect(msft["symbol"] as? String == "MSFT")
        let quotes = try await server.request("GET", "/v1/quotes?symbols=AAPL,MSFT,EUR/USD", token: bob)
        #expect(quotes.array?.map { $0["price"] as? Double } == [160, 310])
        try await Task.sleep(for: .milliseconds(600))  // two more polls: nothing else may arrive
        #expect(await bobStream.received.allSatisfy { $0["symbol"] as? String == "MSFT" || $0["type"] as? String == "subscribed" })

        await aliceStream.close()
        await bobStream.close()
    }

    @Test func badMessagesGetAnErrorAndTheConnectionStaysOpenButOversizedOnesClose() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let stream = try await StreamClient.connect(server, token: alice)
        for message in ["not json", #"{"symbols":["AAPL"]}"#, #"{"type":"dance","symbols":["AAPL"]}"#, #"{"type":"subscribe","symbols":[]}"#, #"{"type":"subscribe","symbols":["no way"]}"#] {
            await stream.send(message)
            let error = try await stream.next { $0["type"] as? String == "error" }
            #expect(error["code"] is String, "\(message)")
            #expect((error["message"] as? String)?.isEmpty == false)
        }
        await stream.send(#"{"type":"subscribe","symbols":["EUR/USD"]}"#)
        #expect(try await stream.next { $0["type"] as? String == "subscribed" }["symbols"] as? [String] == ["EUR/USD"])

        await stream.send(#"{"type":"subscribe","symbols":[""# + String(repeating: "A", count: 70_000) + #""]}"#)
        let close = try await stream.closed()
        #expect(close?.closeCode == .messageTooLarge)
    }

    @Test func theStreamRefusesMissingTokensAndExtraConnectionsPerUser() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        sandbox.writeConfig("[serve]\nmax_connections_per_user = 1\n")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        await #expect(throws: (any Error).self) { _ = try await StreamClient.connect(server, token: nil) }
        await #expect(throws: (any Error).self) { _ = try await StreamClient.connect(server, token: "sw_wrong") }
        let upgrade = ["Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="]
        // A missing or wrong token gets the API's 401, and nothing is upgraded.
        for token in [nil, "sw_wrong"] {
            let refused = try await server.request("GET", "/v1/stream", token: token, headers: upgrade, ownConnection: true)
            #expect(refused.status == 401)
            #expect(refused.errorCode == "unauthorized")
            #expect(refused.headers["Upgrade"].isEmpty)
        }

        let first = try await StreamClient.connect(server, token: alice)
        // The answer proves the server registered the first before the second arrives.
        await first.send(#"{"type":"subscribe","symbols":["AAPL"]}"#)
        _ = try await first.next { $0["type"] as? String == "subscribed" }
        // One more is refused before the upgrade.
        await #expect(throws: (any Error).self) { _ = try await StreamClient.connect(server, token: alice) }
        await first.send(#"{"type":"unsubscribe","symbols":["AAPL"]}"#)
        _ = try await first.next { $0["type"] as? String == "subscribed" }  // the first is still served
        await first.close()
    }

    @Test func removingAUserClosesTheirStreamsAndFloodingClosesWith1008() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice"), bob = try sandbox.addUser("bob")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let stream = try await StreamClient.connect(server, token: alice)
        await stream.send(#"{"type":"subscribe","symbols":["AAPL"]}"#)
        _ = try await stream.next { $0["type"] as? String == "subscribed" }
        #expect(try sandbox.run(["user", "remove", "alice", "--yes"]).status == 0)
        // A leaked token stops working at once, with a close frame that says why (not 1006).
        let removed = try await stream.closed(timeout: .seconds(5))
        #expect(removed?.closeCode == .unknown(4001))
        #expect(removed?.reason == "user removed")

        let flooder = try await StreamClient.connect(server, token: bob)
        for _ in 0..<200 { await flooder.send(#"{"type":"subscribe","symbols":["AAPL"]}"#) }
        #expect(try await flooder.closed(timeout: .seconds(30))?.closeCode == .policyViolation)
        // Every message within the allowance (a burst of 50) was answered before the close.
        #expect(await flooder.received.filter { $0["type"] as? String == "subscribed" }.count >= 50)
    }

    @Test func appUsersCannotRouteAlertsToTheAdminsChannels() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        sandbox.writeConfig("[alerts]\ndefault_notify = [\"pager\", \"stdout\"]\n[channels.pager]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let refused = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"AAPL","condition":{"kind":"above","value":1},"channels":["pager"]}"#)
        #expect(refused.status == 422)
        #expect(refused.object.map { "\($0)" }?.contains("not a channel open to the API") == true)
        let created = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"AAPL","condition":{"kind":"above","value":1}}"#)
        #expect(created.status == 201)
        #expect(created.object?["channels"] as? [String] == ["stdout"])
    }

    @Test func sigtermStopsTheServerCleanlyWithAStreamOpen() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        let server = try ServeProcess(sandbox)
        let stream = try await StreamClient.connect(server, token: alice)
        await stream.send(#"{"type":"subscribe","symbols":["AAPL"]}"#)
        _ = try await stream.next { $0["type"] as? String == "subscribed" }
        server.process.process.terminate()
        let close = try await stream.closed()
        #expect(close?.closeCode == .normalClosure || close == nil)
        let result = try server.process.finish()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty)
    }
}

// MARK: - Helpers

extension Sandbox {
    /// Creates a user with the CLI and returns its API token.
    func addUser(_ name: String) throws -> String {
        let result = try run(["user", "add", name, "--json"])
        guard result.status == 0, let token = (try result.json() as? [String: Any])?["token"] as? String else {
            throw TestFailure("user add \(name): \(result.stderr)")
        }
        return token
    }

    func writeConfig(_ text: String) {
        _ = write("config/stockwatch/config.toml", text)
    }

    /// Stores quotes through `fetch --from -`, as a cron process would.
    func fetch(_ quotes: [(String, Double, Date)]) throws {
        let csv = quotes.map { "\($0.0),\($0.1),\(ISO8601DateFormatter().string(from: $0.2))" }.joined(separator: "\n") + "\n"
        let result = try run(["fetch", "--from", "-"], stdin: csv)
        guard result.status == 0 else { throw TestFailure("fetch: \(result.stderr)") }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `stockwatch serve --listen 127.0.0.1:0`, started and waited for.
final class ServeProcess: @unchecked Sendable {
    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
        var object: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
        var array: [[String: Any]]? { try? JSONSerialization.jsonObject(with: body) as? [[String: Any]] }
        var errorCode: String? { (object?["error"] as? [String: Any])?["code"] as? String }
    }

    let process: Sandbox.Running
    let port: Int

    init(_ sandbox: Sandbox, arguments: [String] = []) throws {
        process = try sandbox.start(["serve", "--listen", "127.0.0.1:0"] + arguments)
        let deadline = Date().addingTimeInterval(20)
        var port: Int?
        while port == nil, Date() < deadline, process.process.isRunning {
            let out = (try? String(contentsOfFile: process.outPath, encoding: .utf8)) ?? ""
            if let line = out.split(separator: "\n").first, line.hasPrefix("listening on 127.0.0.1:") { port = Int(line.split(separator: ":").last!) }
            if port == nil { Thread.sleep(forTimeInterval: 0.02) }
        }
        guard let port else {
            throw TestFailure("serve did not start: \((try? String(contentsOfFile: process.errPath, encoding: .utf8)) ?? "")")
        }
        self.port = port
    }

    func stop() {
        if process.process.isRunning { process.process.terminate() }
        process.process.waitUntilExit()
    }

    /// `ownConnection`: a client of its own, for requests after which the server closes
    /// the connection (a refused upgrade), so that no later request can reuse it.
    func request(_ method: String, _ path: String, token: String? = nil, body: String? = nil, headers: [String: String] = [:], ownConnection: Bool = false) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = HTTPMethod(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let client = ownConnection ? HTTPClient(eventLoopGroupProvider: .singleton) : HTTPClient.shared
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            if ownConnection { try await client.shutdown() }
            return Answer(status: Int(response.status.code), headers: response.headers, body: Data(bytes.readableBytesView))
        } catch {
            if ownConnection { try? await client.shutdown() }
            throw error
        }
    }
}

/// One JSON object the stream sent.
struct Message: @unchecked Sendable {
    let object: [String: Any]
    init?(_ text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
        self.object = object
    }
    subscript(key: String) -> Any? { object[key] }
    var keys: Dictionary<String, Any>.Keys { object.keys }
}

/// A WebSocket client of `/v1/stream` that records what it receives.
actor StreamClient {
    private(set) var texts: [String] = []
    private var closeFrame: WebSocketCloseFrame?
    private var finished = false
    private var cursor = 0
    private let outgoing: AsyncStream<String>.Continuation
    private var task: Task<Void, any Error>?

    var received: [Message] { texts.compactMap(Message.init) }

    private init(outgoing: AsyncStream<String>.Continuation) { self.outgoing = outgoing }

    /// Connects and returns once the upgrade succeeded; throws when it was refused.
    static func connect(_ server: ServeProcess, token: String?, headers extra: HTTPFields = [:]) async throws -> StreamClient {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let client = StreamClient(outgoing: continuation)
        let upgraded = AsyncStream.makeStream(of: Bool.self)
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        headers.append(contentsOf: extra)
        let logger = Logger(label: "test-ws-client")
        let task = Task {
            do {
                let frame = try await WebSocketClient.connect(
                    url: "ws://127.0.0.1:\(server.port)/v1/stream",
                    configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers), logger: logger
                ) { inbound, outbound, _ in
                    upgraded.continuation.yield(true)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await text in stream { try await outbound.write(.text(text)) }
                            // The test finished the stream: close. (Cancelled: the server closed.)
                            if !Task.isCancelled { try await outbound.close(.normalClosure, reason: nil) }
                        }
                        group.addTask {
                            for try await message in inbound.messages(maxSize: 1 << 20) {
                                if case let .text(text) = message { await client.append(text) }
                            }
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                }
                await client.finish(frame)
            } catch {
                await client.finish(nil)
                upgraded.continuation.yield(false)
                throw error
            }
            upgraded.continuation.yield(false)
        }
        await client.setTask(task)
        var iterator = upgraded.stream.makeAsyncIterator()
        guard await iterator.next() == true else {
            _ = try await task.value
            throw TestFailure("the server closed the stream before it opened")
        }
        return client
    }

    private func setTask(_ task: Task<Void, any Error>) { self.task = task }
    private func append(_ text: String) { texts.append(text) }
    private func finish(_ frame: WebSocketCloseFrame?) {
        closeFrame = frame
        finished = true
    }

    func send(_ text: String) { outgoing.yield(text) }

    /// The next message (after those already returned) that matches.
    func next(timeout: Duration = .seconds(5), where match: @Sendable (Message) -> Bool) async throws -> Message {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            while cursor < texts.count {
                let text = texts[cursor]
                cursor += 1
                if let message = Message(text), match(message) { return message }
            }
            if finished { throw TestFailure("stream closed; received \(texts)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("no matching message within \(timeout); received \(texts)")
    }

    /// Waits for the server to close the connection; the close frame it sent.
    func closed(timeout: Duration = .seconds(10)) async throws -> WebSocketCloseFrame? {
        let deadline = ContinuousClock.now + timeout
        while !finished, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        guard finished else { throw TestFailure("the stream stayed open") }
        return closeFrame
    }

    func close() async {
        outgoing.finish()
        _ = try? await closed()
    }
}
