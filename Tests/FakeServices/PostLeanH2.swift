// `stockwatch-fakes --post-lean-h2 PORT CA_FILE COUNT CONNECTIONS STREAMS BODY_FILE`: as
// --post-lean, over HTTP/2: CONNECTIONS kept connections, STREAMS requests in flight on
// each (one stream per request, the next opened when an answer ends), NIOSSL and
// NIOHTTP2's inline multiplexer alone. The floor of an HTTP/2 sending path.

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL

func runPostLeanH2(_ arguments: [String]) async {
    guard arguments.count == 6, let port = Int(arguments[0]), let count = Int(arguments[2]), count > 0,
          let connections = Int(arguments[3]), connections > 0, let streams = Int(arguments[4]), streams > 0,
          let body = FileManager.default.contents(atPath: arguments[5])
    else { fail("usage: stockwatch-fakes --post-lean-h2 PORT CA_FILE COUNT CONNECTIONS STREAMS BODY_FILE") }
    await measureLean("post-lean-h2", count: count, shape: "\(connections) connections x \(streams) streams", caFile: arguments[1], alpn: "h2") { context, all, counts in
        for _ in 0..<connections {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                }
            }.connect(host: "127.0.0.1", port: port).get()
            try await channel.eventLoop.submit {
                let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                ) { $0.eventLoop.makeSucceededVoidFuture() }
                let driver = LeanH2Driver(multiplexer: multiplexer, body: channel.allocator.buffer(bytes: body), counts: counts, all: all, total: count)
                for _ in 0..<streams { driver.open() }
            }.get()
        }
    }
}

/// One connection's streams: a new one for each request while requests are left.
private final class LeanH2Driver: @unchecked Sendable {
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    let body: ByteBuffer
    let counts: NIOLockedValueBox<LeanCounts>
    let all: EventLoopPromise<Void>
    let total: Int
    let headers: HPACKHeaders

    init(multiplexer: NIOHTTP2Handler.StreamMultiplexer, body: ByteBuffer, counts: NIOLockedValueBox<LeanCounts>, all: EventLoopPromise<Void>, total: Int) {
        self.multiplexer = multiplexer
        self.body = body
        self.counts = counts
        self.all = all
        self.total = total
        headers = [
            ":method": "POST", ":scheme": "https", ":authority": "127.0.0.1", ":path": "/v1/projects/bench/messages:send",
            "authorization": "Bearer bench", "content-type": "application/json; charset=UTF-8", "content-length": String(body.readableBytes),
        ]
    }

    func open() {
        guard counts.withLockedValue({ $0.take() }) else { return }
        multiplexer.createStreamChannel(promise: nil) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(LeanH2Stream(driver: self))
            }
        }
    }

    func answered(ok: Bool) {
        if counts.withLockedValue({ $0.answer(ok: ok, of: total) }) { all.succeed() }
        open()
    }

    func failed(_ error: any Error) {
        if counts.withLockedValue({ $0.fail() }) { all.fail(error) }
    }
}

private final class LeanH2Stream: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload
    let driver: LeanH2Driver
    var ok = false
    var done = false

    init(driver: LeanH2Driver) { self.driver = driver }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.headers(.init(headers: driver.headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(driver.body), endStream: true))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .headers(headers):
            if let status = headers.headers.first(name: ":status") { ok = status == "200" }
            if headers.endStream { end() }
        case let .data(data):
            if data.endStream { end() }
        default:
            break
        }
    }

    private func end() {
        guard !done else { return }
        done = true
        driver.answered(ok: ok)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        driver.failed(error)
        context.close(promise: nil)
    }
}
