// `stockwatch-fakes --post-lean PORT CA_FILE COUNT CONNECTIONS BODY_FILE`: the floor of the
// HTTP work of notify with a sending path much leaner than AsyncHTTPClient's, for issue 19's
// 20,000/s. COUNT POSTs of BODY_FILE to https://127.0.0.1:PORT (a certificate CA_FILE
// trusts; the host name is not checked) over CONNECTIONS kept HTTP/1.1 connections, one
// request in flight on each, the next written when an answer ends: NIOSSL and NIOHTTP1
// alone, no task, request object or deadline per send. Benchmarks/notify-nginx runs it
// against its nginx. Prints one line: sends a second and this process's CPU per send.

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

func runPostLean(_ arguments: [String]) async {
    guard arguments.count == 5, let port = Int(arguments[0]), let count = Int(arguments[2]), count > 0,
          let connections = Int(arguments[3]), connections > 0, let body = FileManager.default.contents(atPath: arguments[4])
    else { fail("usage: stockwatch-fakes --post-lean PORT CA_FILE COUNT CONNECTIONS BODY_FILE") }
    await measureLean("post-lean", count: count, shape: "\(connections) connections", caFile: arguments[1], alpn: "http/1.1") { context, all, counts in
        let group = MultiThreadedEventLoopGroup.singleton
        for _ in 0..<connections {
            _ = try await ClientBootstrap(group: group).channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(LeanSender(body: body, counts: counts, all: all, total: count))
                }
            }.connect(host: "127.0.0.1", port: port).get()
        }
    }
}

/// The frame of a lean run: a TLS context trusting CA_FILE (the host name not checked)
/// that offers `alpn`, COUNT requests started by `start`, then one line with the rate
/// and this process's CPU per send. Exits 0 when every answer was a 200.
func measureLean(
    _ name: String, count: Int, shape: String, caFile: String, alpn: String,
    start: (NIOSSLContext, EventLoopPromise<Void>, NIOLockedValueBox<LeanCounts>) async throws -> Void
) async {
    do {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caFile)
        tls.certificateVerification = .noHostnameVerification
        tls.applicationProtocols = [alpn]
        let context = try NIOSSLContext(configuration: tls)
        let all = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let counts = NIOLockedValueBox(LeanCounts(left: count))
        let cpuBefore = processCPUSeconds()
        let started = ContinuousClock.now
        try await start(context, all, counts)
        try await all.futureResult.get()
        let elapsed = (ContinuousClock.now - started).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        let cpu = processCPUSeconds() - cpuBefore
        let failed = counts.withLockedValue { $0.failed }
        print("\(name): " + String(format: "%d POSTs in %.2f s = %.0f/s, %d failed, ", count, seconds, Double(count) / seconds, failed)
              + shape + String(format: "; this process used %.2f s of CPU (%.3f ms a send)", cpu, cpu / Double(count) * 1000))
        exit(failed == 0 ? 0 : 1)
    } catch {
        fail("\(name): \(error)")
    }
}

/// Requests not sent yet, answers, refusals, and whether the run has ended (every answer
/// came, or a connection failed): it ends once.
struct LeanCounts {
    var left: Int
    var answered = 0
    var failed = 0
    var over = false

    /// Takes one request to send, if any is left.
    mutating func take() -> Bool {
        guard left > 0 else { return false }
        left -= 1
        return true
    }

    /// Counts an answer: true for the last of `total`, once.
    mutating func answer(ok: Bool, of total: Int) -> Bool {
        answered += 1
        if !ok { failed += 1 }
        guard answered == total, !over else { return false }
        over = true
        return true
    }

    /// Ends the run on a failure: true the first time, unless it had ended.
    mutating func fail() -> Bool {
        guard !over else { return false }
        over = true
        left = 0
        return true
    }
}

/// One connection's sender: writes a request, and the next when the answer ends.
private final class LeanSender: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let body: Data
    let counts: NIOLockedValueBox<LeanCounts>
    let all: EventLoopPromise<Void>
    let total: Int
    var buffer = ByteBuffer()
    var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/projects/bench/messages:send")

    init(body: Data, counts: NIOLockedValueBox<LeanCounts>, all: EventLoopPromise<Void>, total: Int) {
        self.body = body
        self.counts = counts
        self.all = all
        self.total = total
        head.headers.add(name: "Host", value: "127.0.0.1")
        head.headers.add(name: "Authorization", value: "Bearer bench")
        head.headers.add(name: "Content-Type", value: "application/json; charset=UTF-8")
        head.headers.add(name: "Content-Length", value: String(body.count))
    }

    func channelActive(context: ChannelHandlerContext) {
        buffer = context.channel.allocator.buffer(bytes: body)
        sendNext(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(answer):
            if answer.status != .ok { counts.withLockedValue { $0.failed += 1 } }
        case .body:
            break
        case .end:
            // A refusal was counted at its head.
            if counts.withLockedValue({ $0.answer(ok: true, of: total) }) { all.succeed() }
            sendNext(context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(failing: error)
        context.close(promise: nil)
    }

    /// A connection that ends with answers missing (the server closed it) ends the run
    /// instead of leaving it waiting for them.
    func channelInactive(context: ChannelHandlerContext) {
        finish(failing: ChannelError.ioOnClosedChannel)
    }

    /// Fails the run once, unless every answer came.
    private func finish(failing error: any Error) {
        if counts.withLockedValue({ $0.fail() }) { all.fail(error) }
    }

    private func sendNext(_ context: ChannelHandlerContext) {
        guard counts.withLockedValue({ $0.take() }) else { return }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
