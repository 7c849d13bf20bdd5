import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing
import TestSupport
@testable import StockwatchCore

/// Issue 19: the channels' POSTs on kept connections (`KeptConnections`), against a server
/// that answers byte by byte as each test scripts it: kept and closed connections, slow,
/// oversized, interim and close-delimited answers, and TLS trust.
@Suite struct KeptConnectionTests {
    let body = Data(#"{"message":"AAPL crossed above 200"}"#.utf8)

    func post(_ http: HTTPTransport, _ url: String, timeout: Int64 = 3, maxBody: Int = 1 << 20, tls: TLSConfiguration? = nil) async -> Result<HTTPTransport.Response, HTTPTransport.Failure> {
        await http.post(url, headers: [("Content-Type", "application/json")], body: body, timeoutSeconds: timeout, maxBody: maxBody, tls: tls)
    }

    static func ok(_ body: String = "{}", extra: String = "") -> String {
        "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)"
    }

    @Test func sequentialPostsShareOneConnectionAndCarryTheirHeaders() async throws {
        let server = try await ScriptedServer { _ in .send(Self.ok(#"{"name":"1"}"#)) }
        let http = HTTPTransport(connectTimeoutSeconds: 2, connectionsPerHost: 4)
        for _ in 0..<5 {
            let answer = try await post(http, server.url("/v1/send?x=1")).get()
            #expect(answer.status == 200)
            #expect(String(decoding: answer.body, as: UTF8.self) == #"{"name":"1"}"#)
        }
        #expect(server.connections == 1)
        let request = try #require(server.requests.first)
        #expect(request.hasPrefix("POST /v1/send?x=1 HTTP/1.1\r\n"))
        #expect(request.contains("Host: 127.0.0.1:\(server.port)\r\n"))
        #expect(request.contains("Content-Length: \(body.count)\r\n"))
        #expect(request.hasSuffix(String(decoding: body, as: UTF8.self)))
        await http.shutdown(); await server.stop()
    }

    @Test func concurrentPostsOpenAtMostTheLimitAndAllAreAnswered() async throws {
        let server = try await ScriptedServer { _ in .after(milliseconds: 30, .send(Self.ok())) }
        let http = HTTPTransport(connectTimeoutSeconds: 2, connectionsPerHost: 2)
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<10 { group.addTask { (try? await post(http, server.url("/")).get())?.status ?? 0 } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 10))
        #expect(server.connections == 2)
        await http.shutdown(); await server.stop()
    }

    /// A POST that waited for a free connection until after its deadline fails unsent:
    /// never sent and then reported as failed (the delivery would go out twice).
    @Test func aPostThatWaitedPastItsDeadlineIsNotSent() async throws {
        let server = try await ScriptedServer { index in index == 0 ? .after(milliseconds: 1500, .send(Self.ok())) : .send(Self.ok()) }
        let http = HTTPTransport(connectTimeoutSeconds: 2, connectionsPerHost: 1)
        async let first = post(http, server.url("/"), timeout: 5)
        #expect(await waitUntil(timeout: .seconds(5)) { server.requests.count == 1 })
        #expect(await post(http, server.url("/"), timeout: 1).failureMessage == "no answer within 1 s")
        #expect(try await first.get().status == 200)
        #expect(server.requests.count == 1)
        #expect(try await post(http, server.url("/")).get().status == 200)
        await http.shutdown(); await server.stop()
    }

    @Test func anAnswerWithConnectionCloseIsKeptNoLongerAndTheNextPostReconnects() async throws {
        let server = try await ScriptedServer { _ in .send(Self.ok(extra: "Connection: close\r\n")) }
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        #expect(try await post(http, server.url("/")).get().status == 200)
        #expect(try await post(http, server.url("/")).get().status == 200)
        #expect(server.connections == 2)
        await http.shutdown(); await server.stop()
    }

    /// The server closes a kept connection while it is idle, as servers do after their
    /// keep-alive timeout: the next POST goes on a new one instead of failing.
    @Test func aKeptConnectionTheServerClosedIsReplaced() async throws {
        let server = try await ScriptedServer { index in index == 0 ? .sendAndClose(Self.ok()) : .send(Self.ok()) }
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        #expect(try await post(http, server.url("/")).get().status == 200)
        #expect(await waitUntil(timeout: .seconds(5)) { http.kept.openConnections == 0 })
        #expect(try await post(http, server.url("/")).get().status == 200)
        #expect(server.connections == 2)
        await http.shutdown(); await server.stop()
    }

    @Test func aConnectionClosedWithoutAnAnswerFailsThatPostOnly() async throws {
        let server = try await ScriptedServer { index in index == 0 ? .close : .send(Self.ok()) }
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        #expect(await post(http, server.url("/")).failureMessage == "connection closed by the server")
        #expect(try await post(http, server.url("/")).get().status == 200)
        #expect(server.requests.count == 2)
        await http.shutdown(); await server.stop()
    }

    @Test(arguments: [false, true])
    func aSlowAnswerEndsAtTheDeadline(startsTheBody: Bool) async throws {
        let server = try await ScriptedServer { _ in startsTheBody ? .send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"na") : .nothing }
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        let started = ContinuousClock.now
        #expect(await post(http, server.url("/"), timeout: 1).failureMessage == "no answer within 1 s")
        #expect(ContinuousClock.now - started < .seconds(3))
        await http.shutdown(); await server.stop()
    }

    @Test func anAnswerOverTheCapIsCutOff() async throws {
        let big = String(repeating: "x", count: 5000)
        let server = try await ScriptedServer { _ in .send(Self.ok(big)) }
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        #expect(await post(http, server.url("/"), maxBody: 1000).failureMessage == "answer larger than 1000 bytes")
        #expect(try await post(http, server.url("/"), maxBody: 5000).get().body.count == 5000)
        await http.shutdown(); await server.stop()
    }

    @Test func chunkedInterimAndCloseDelimitedAnswersAreRead() async throws {
        let server = try await ScriptedServer { index in
            switch index {
            case 0: .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            case 1: .send("HTTP/1.1 100 Continue\r\n\r\n" + Self.ok("after"))
            default: .sendAndClose("HTTP/1.1 202 Accepted\r\n\r\nto the end")
            }
        }
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        #expect(try await post(http, server.url("/")).get().bodyText == "abcde")
        let interim = try await post(http, server.url("/")).get()
        #expect(interim.status == 200 && interim.bodyText == "after")
        let delimited = try await post(http, server.url("/")).get()
        #expect(delimited.status == 202 && delimited.bodyText == "to the end")
        await http.shutdown(); await server.stop()
    }

    @Test func tlsTrustsOnlyTheGivenRoots() async throws {
        let server = try await ScriptedServer(tls: true) { _ in .send(Self.ok()) }
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        var trusting = TLSConfiguration.makeClientConfiguration()
        trusting.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(TestCertificate.certificatePEM.utf8), format: .pem)])
        #expect(try await post(http, server.url("/"), tls: trusting).get().status == 200)
        let untrusted = await post(http, server.url("/")).failureMessage ?? ""
        #expect(untrusted.hasPrefix("TLS failed") && untrusted.contains("set the channel's ca_file"), "\(untrusted)")
        #expect(server.requests.count == 1)
        await http.shutdown(); await server.stop()
    }

    /// A local peer can refuse the handshake before the connect's callback hands the new
    /// connection its first exchange: the exchange reports the TLS failure that closed it,
    /// not a bare close (tlsTrustsOnlyTheGivenRoots saw that once in four full runs).
    @Test func aHandshakeRefusedBeforeTheFirstExchangeIsReportedAsTLS() throws {
        let pool = KeptConnections.OriginPool(
            origin: .init(secure: true, host: "127.0.0.1", port: 443, trust: 0), context: nil, limit: 1, connectTimeout: .seconds(1))
        let channel = EmbeddedChannel()
        let connection = KeptConnection(pool: pool, eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        channel.pipeline.fireErrorCaught(NIOSSLError.handshakeFailed(.sslError([])))
        #expect(!channel.isActive)
        // EmbeddedChannel runs everything on this thread.
        final class Box: @unchecked Sendable { var outcome: KeptConnections.Outcome? }
        let box = Box()
        let exchange = KeptConnections.Exchange(
            head: HTTPRequestHead(version: .http1_1, method: .POST, uri: "/"), body: ByteBuffer(), deadline: .now() + .seconds(5),
            timeoutSeconds: 5, maxBody: 1024, tlsHint: "set the channel's ca_file", done: { box.outcome = $0 })
        connection.start(exchange, reused: false)
        guard case let .failure(failure) = box.outcome else { Issue.record("no failure"); return }
        #expect(failure.message.hasPrefix("TLS failed") && failure.message.contains("set the channel's ca_file"), "\(failure.message)")
    }

    /// A certificate the given roots trust, but issued for another name than the host's.
    @Test func aTrustedCertificateForAnotherNameIsRefused() async throws {
        let other = try await ScriptedServer(tls: true, certificate: Self.otherCertificate, key: Self.otherKey) { _ in .send(Self.ok()) }
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        var trusting = TLSConfiguration.makeClientConfiguration()
        trusting.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(Self.otherCertificate.utf8), format: .pem)])
        let misnamed = await post(http, other.url("/"), tls: trusting).failureMessage ?? ""
        #expect(misnamed.hasPrefix("TLS failed"), "\(misnamed)")
        #expect(other.requests.isEmpty)
        await http.shutdown(); await other.stop()
    }

    /// Self-signed for DNS:other.example only (openssl req -x509 -newkey ec ... -subj
    /// /CN=other.example -addext subjectAltName=DNS:other.example), valid until 2126.
    static let otherCertificate = """
-----BEGIN CERTIFICATE-----
MIIBojCCAUegAwIBAgIUYJrIF+Ny+NGSj8CIzipeBNSX8yYwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNb3RoZXIuZXhhbXBsZTAgFw0yNjEyMDYwMjEwMzNaGA8yMTI2
MTExMjAyMTAzM1owGDEWMBQGA1UEAwwNb3RoZXIuZXhhbXBsZTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABOVEdpdCcHtR84H7grFBET81PP0xs9YewHsfxIMIzRMq
lAx6JrWfntDF8hkTafAVEiHR1SCYvYKTJ30lN05uWhCjbTBrMB0GA1UdDgQWBBRH
euif0I23SIyJb36cf1NDHJgM5jAfBgNVHSMEGDAWgBRHeuif0I23SIyJb36cf1ND
HJgM5jAPBgNVHRMBAf8EBTADAQH/MBgGA1UdEQQRMA+CDW90aGVyLmV4YW1wbGUw
CgYIKoZIzj0EAwIDSQAwRgIhAMf30+WWx9YdKzacGCPuoZWscyUv3Ta7e0ebF9Ww
WIVMAiEAlKnM/5F00A0keNiohoL9/a7275tyFnHyZcbNfeNiCp0=
-----END CERTIFICATE-----
"""

    static let otherKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNw3vvEvUyKvTkfcX
DQMYDQloOmfg15PXD1g0oX0IosehRANCAATlRHaXQnB7UfOB+4KxQRE/NTz9MbPW
HsB7H8SDCM0TKpQMeia1n57QxfIZE2nwFRIh0dUgmL2Ckyd9JTdObloQ
-----END PRIVATE KEY-----
"""

    @Test func aRefusedConnectionAndABadURLSayWhatFailedWithoutTheURL() async throws {
        let server = try await ScriptedServer { _ in .send(Self.ok()) }
        let port = server.port
        await server.stop()
        let http = HTTPTransport(connectTimeoutSeconds: 2)
        let refused = await post(http, "http://127.0.0.1:\(port)/secret-path").failureMessage ?? ""
        #expect(refused.hasPrefix("connection failed") && !refused.contains("secret") && !refused.contains("\(port)"), "\(refused)")
        #expect(await post(http, "ftp://127.0.0.1/").failureMessage == "not a valid URL")
        await http.shutdown()
        #expect(await post(http, "http://127.0.0.1:\(port)/").failureMessage == "the HTTP client was shut down")
    }
}

extension Result where Success == HTTPTransport.Response, Failure == HTTPTransport.Failure {
    var failureMessage: String? {
        if case let .failure(failure) = self { return failure.message }
        return nil
    }
}

extension HTTPTransport.Response {
    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A TCP (or TLS) server on 127.0.0.1 that reads each request whole (headers and a
/// Content-Length body) and does what `script` says for the request's index: raw bytes
/// back, bytes and then a close, a close, or nothing.
final class ScriptedServer: @unchecked Sendable {
    indirect enum Action: Sendable {
        case send(String)
        case sendAndClose(String)
        case close
        case nothing
        case after(milliseconds: Int64, Action)
    }

    private let lock = NSLock()
    private var received: [String] = []
    private var opened = 0
    private var channels: [any Channel] = []
    private var listener: (any Channel)?
    let script: @Sendable (Int) -> Action
    private(set) var port = 0

    var requests: [String] { lock.withLock { received } }
    var connections: Int { lock.withLock { opened } }
    func url(_ path: String) -> String { "\(tls ? "https" : "http")://127.0.0.1:\(port)\(path)" }
    let tls: Bool

    /// `tls`: presenting `TestCertificate`, or `certificate` and `key` when given.
    init(tls: Bool = false, certificate: String? = nil, key: String? = nil, _ script: @escaping @Sendable (Int) -> Action) async throws {
        self.script = script
        self.tls = tls
        var context = tls ? try TestCertificate.serverContext() : nil
        if tls, let certificate, let key {
            context = try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(certificate.utf8), format: .pem))],
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))))
        }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                lock.withLock { opened += 1; channels.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    if let context { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
                    try channel.pipeline.syncOperations.addHandler(Handler(server: self))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        listener = channel
        port = channel.localAddress?.port ?? 0
    }

    func stop() async {
        try? await listener?.close().get()
        for channel in lock.withLock({ channels }) { try? await channel.close().get() }
    }

    fileprivate func record(_ request: String) -> Action {
        let index = lock.withLock { received.append(request); return received.count - 1 }
        return script(index)
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let server: ScriptedServer
        var pending = ""

        init(server: ScriptedServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += String(buffer: unwrapInboundIn(data))
            while let split = pending.range(of: "\r\n\r\n") {
                let head = pending[..<split.lowerBound]
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                let whole = pending.utf8.distance(from: pending.startIndex, to: split.upperBound) + length
                guard pending.utf8.count >= whole else { return }
                let end = pending.utf8.index(pending.startIndex, offsetBy: whole)
                let request = String(pending[..<end])
                pending = String(pending[end...])
                act(server.record(request), context: context)
            }
        }

        func act(_ action: Action, context: ChannelHandlerContext) {
            switch action {
            case let .send(bytes):
                context.writeAndFlush(NIOAny(ByteBuffer(string: bytes)), promise: nil)
            case let .sendAndClose(bytes):
                context.writeAndFlush(NIOAny(ByteBuffer(string: bytes)), promise: nil)
                context.close(promise: nil)
            case .close:
                context.close(promise: nil)
            case .nothing:
                break
            case let .after(milliseconds, later):
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(milliseconds)) { bound.value.0.act(later, context: bound.value.1) }
            }
        }
    }
}
