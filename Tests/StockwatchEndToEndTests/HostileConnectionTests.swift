import Foundation
import Testing

/// serve against connections that never make a proper first request: they are closed
/// after `[serve] request_head_timeout`, answered 400 when malformed, and capped per
/// peer address, while real requests go on being served.
@Suite(.serialized) struct HostileConnectionTests {
    @Test func idleSlowAndMalformedConnectionsAreClosedAndEachAddressIsCapped() async throws {
        let sandbox = try Sandbox()
        sandbox.writeConfig("[serve]\nrequest_head_timeout = \"1s\"\nmax_connections_per_address = 4\n")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        // Sends nothing: closed after the deadline (not 60 s, not never).
        let idle = try RawSocket(port: server.port)
        let started = ContinuousClock.now
        #expect(idle.readUntilClosed(timeout: 10).closed)
        #expect(ContinuousClock.now - started < .seconds(5))

        // Slowloris: a header line every 300 ms never completes the head.
        let slow = try RawSocket(port: server.port)
        slow.send("GET /healthz HTTP/1.1\r\nHost: x\r\n")
        var slowClosed = false
        for _ in 0..<20 where !slowClosed {
            try await Task.sleep(for: .milliseconds(300))
            slowClosed = !slow.send("X-Slow: 1\r\n") || slow.readUntilClosed(timeout: 0.01).closed
        }
        #expect(slowClosed)

        // Malformed: answered 400, then closed.
        for request in ["\u{0}\u{1}garbage\r\n\r\n", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\u{0}b\r\n\r\n", "NOT A REQUEST LINE\r\n\r\n"] {
            let bad = try RawSocket(port: server.port)
            bad.send(request)
            let answer = bad.readUntilClosed(timeout: 5)
            #expect(answer.text.hasPrefix("HTTP/1.1 400 "), "\(request.debugDescription): \(answer.text)")
            #expect(answer.closed)
        }

        // Four connections from 127.0.0.1 are the most: the fifth is closed at once, while
        // another address (127.0.0.2) is still served.
        let held = try (0..<4).map { _ in try RawSocket(port: server.port) }
        let fifth = try RawSocket(port: server.port)
        let refused = fifth.readUntilClosed(timeout: 5)
        #expect(refused.closed && refused.text.isEmpty)
        let other = try RawSocket(port: server.port, from: "127.0.0.2")
        other.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(other.readUntilClosed(timeout: 5).text.hasPrefix("HTTP/1.1 200 "))
        // Once they close (here: their deadline), 127.0.0.1 is served again.
        for socket in held { #expect(socket.readUntilClosed(timeout: 10).closed) }
        #expect(try await server.request("GET", "/healthz").status == 200)
    }

    /// A body that trickles in after its head, a second head that trickles in on a
    /// kept-alive connection, and a declared body over the limit: before, the first two
    /// stayed open as long as a byte came every minute, and the third got no answer.
    @Test func slowBodiesAndSlowLaterHeadsAreClosedAndOversizedBodiesRefusedAtOnce() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        sandbox.writeConfig("[serve]\nrequest_head_timeout = \"1s\"\n")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        let slowBody = try RawSocket(port: server.port)
        slowBody.send("POST /v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(alice)\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        var started = ContinuousClock.now
        var closed = false
        for _ in 0..<30 where !closed {
            try await Task.sleep(for: .milliseconds(300))
            closed = !slowBody.send(" ") || slowBody.readUntilClosed(timeout: 0.01).closed
        }
        #expect(closed)
        #expect(ContinuousClock.now - started < .seconds(5))

        let laterHead = try RawSocket(port: server.port)
        laterHead.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n")
        started = ContinuousClock.now
        closed = false
        var seen = ""
        for _ in 0..<30 where !closed {
            try await Task.sleep(for: .milliseconds(300))
            let read = laterHead.readUntilClosed(timeout: 0.01)
            seen += read.text
            closed = read.closed || !laterHead.send("X-Slow: 1\r\n")
        }
        #expect(closed)
        #expect(seen.hasPrefix("HTTP/1.1 200 "))
        #expect(ContinuousClock.now - started < .seconds(5))

        let oversized = try RawSocket(port: server.port)
        oversized.send("POST /v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(alice)\r\nContent-Length: 100000\r\n\r\n{")
        started = ContinuousClock.now
        let answer = oversized.readUntilClosed(timeout: 5)
        #expect(answer.text.hasPrefix("HTTP/1.1 413 "), "\(answer.text)")
        #expect(answer.text.contains("too_large"))
        #expect(answer.closed)
        #expect(ContinuousClock.now - started < .seconds(1))

        // A kept-alive connection that sends its next request in one go is served as before.
        #expect(try await server.request("GET", "/healthz").status == 200)
    }

    /// Review of the guards: blank lines before a request line (which the parser skips)
    /// must not cancel the head deadline; an upgrade written in any form NIO accepts
    /// (a list in Upgrade, a path Hummingbird normalises) must not crash the server when
    /// its first frame arrives.
    @Test func leadingBlankLinesDoNotCancelTheDeadlineAndOddUpgradesDoNotCrash() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        sandbox.writeConfig("[serve]\nrequest_head_timeout = \"1s\"\n")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        let blank = try RawSocket(port: server.port)
        blank.send("\r\n\r\n\r\n")
        let started = ContinuousClock.now
        #expect(blank.readUntilClosed(timeout: 10).closed)
        #expect(ContinuousClock.now - started < .seconds(5))

        for (path, upgrade) in [("/v1/stream", "websocket, x-other"), ("/v1/stream/", "websocket"), ("//v1/stream", "WebSocket")] {
            let socket = try RawSocket(port: server.port)
            socket.send("GET \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(alice)\r\nConnection: keep-alive, Upgrade\r\nUpgrade: \(upgrade)\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            _ = socket.readUntilClosed(timeout: 1)
            // A masked text frame, then garbage.
            socket.send("\u{81}\u{82}\u{1}\u{2}\u{3}\u{4}\u{7a}\u{7b}")
            socket.send("not a frame at all\r\n\r\n")
            _ = socket.readUntilClosed(timeout: 0.5)
            #expect(try await server.request("GET", "/healthz").status == 200, "\(path) \(upgrade)")
        }
    }

    /// A method a path does not have is 405 with Allow; an upgrade that cannot be a
    /// WebSocket handshake is 400, not an empty reply.
    @Test func wrongMethodsAre405AndMalformedUpgradesAre400() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        for (method, path, allow) in [("PUT", "/v1/alerts", "GET, POST"), ("DELETE", "/v1/quotes", "GET"), ("POST", "/v1/alerts/3", "GET, DELETE"), ("PATCH", "/healthz", "GET")] {
            let answer = try await server.request(method, path, token: alice)
            #expect(answer.status == 405, "\(method) \(path)")
            #expect(answer.headers.first(name: "Allow") == allow)
            #expect(answer.errorCode == "method_not_allowed")
        }
        #expect(try await server.request("GET", "/v1/nothing", token: alice).status == 404)
        #expect(try await server.request("GET", "/v1/alerts/3", token: alice).status == 404)

        for extra in ["", "Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"] {
            let socket = try RawSocket(port: server.port)
            socket.send("GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(alice)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\(extra)\r\n")
            let answer = socket.readUntilClosed(timeout: 5)
            #expect(answer.text.hasPrefix("HTTP/1.1 400 "), "\(extra): \(answer.text)")
            #expect(answer.text.contains("bad_upgrade"))
        }
        // Without a token it is still 401 first.
        let anonymous = try RawSocket(port: server.port)
        anonymous.send("GET /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        #expect(anonymous.readUntilClosed(timeout: 5).text.hasPrefix("HTTP/1.1 401 "))
    }
}

/// A TCP client on raw POSIX sockets: what a hostile client sends is not HTTP.
final class RawSocket {
    let fd: Int32

    init(port: Int, from source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, source, &local.sin_addr)
            let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    /// False when the peer has closed (the write fails).
    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count
    }

    /// Reads until the peer closes or `timeout` seconds pass: what arrived, and whether it closed.
    func readUntilClosed(timeout: Double) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            guard ready > 0 else { break }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[..<count]
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}
