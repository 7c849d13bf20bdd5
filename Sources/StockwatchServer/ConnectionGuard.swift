import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Open connections per TCP peer address, across every event loop.
final class PeerConnections: Sendable {
    let limit: Int
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    /// `limit` 0: no limit.
    init(limit: Int) { self.limit = limit }

    /// False when the address already holds `limit` connections.
    func open(_ address: String) -> Bool {
        counts.withLockedValue { counts in
            if limit > 0, counts[address, default: 0] >= limit { return false }
            counts[address, default: 0] += 1
            return true
        }
    }

    func close(_ address: String) {
        counts.withLockedValue { counts in
            let left = counts[address, default: 1] - 1
            counts[address] = left > 0 ? left : nil
        }
    }

    var total: Int { counts.withLockedValue { $0.values.reduce(0, +) } }
}

/// First in every connection's pipeline, on the raw bytes. Hummingbird's idle timeout
/// starts only once a first request head has been parsed, so without this a connection
/// that sends nothing, a header line now and then (slowloris), or bytes that never end a
/// head would stay open for ever. It closes a connection that has not sent a complete
/// first request head within the deadline, and one over its address's connection limit.
/// Later requests on a kept-alive connection fall under Hummingbird's idle timeout.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let headTimeout: TimeAmount
    private let peers: PeerConnections
    private var peer: String?
    private var deadline: Scheduled<Void>?
    /// The last bytes seen, to find the blank line that ends a head across reads.
    private var tail: [UInt8] = []
    private var headComplete = false

    init(headTimeout: TimeAmount, peers: PeerConnections) {
        self.headTimeout = headTimeout
        self.peers = peers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        guard peers.open(address) else {
            context.close(promise: nil)
            return
        }
        peer = address
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: headTimeout) { loopBound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        if let peer { peers.close(peer) }
        peer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !headComplete {
            // A head ends with an empty line: CRLF CRLF (or LF LF, which parsers accept).
            let window = tail + Array(unwrapInboundIn(data).readableBytesView)
            if Self.endsHead(window) {
                headComplete = true
                deadline?.cancel()
                deadline = nil
                tail = []
            } else {
                tail = Array(window.suffix(3))
            }
        }
        context.fireChannelRead(data)
    }

    private static func endsHead(_ bytes: [UInt8]) -> Bool {
        for i in bytes.indices where bytes[i] == 10 {
            if i + 1 < bytes.count, bytes[i + 1] == 10 { return true }
            if i >= 1, i + 2 < bytes.count, bytes[i - 1] == 13, bytes[i + 1] == 13, bytes[i + 2] == 10 { return true }
        }
        return false
    }

    /// Writes `bytes` straight to the socket (no HTTP encoder is in the way) and closes.
    static func answerAndClose(_ bytes: String, in channel: any Channel) {
        guard let context = try? channel.pipeline.syncOperations.context(handlerType: ConnectionGuard.self) else {
            channel.close(promise: nil)
            return
        }
        context.writeAndFlush(NIOAny(channel.allocator.buffer(string: bytes))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Right after the HTTP decoder: a request it cannot parse (a garbage request line, a NUL
/// or control byte in a header, an oversized head) gets `400` and a close, instead of
/// silence on a connection that stays open.
final class MalformedRequestAnswer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else { return context.fireErrorCaught(error) }
        let body = #"{"error":{"code":"bad_request","message":"malformed HTTP request"}}"#
        ConnectionGuard.answerAndClose(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)",
            in: context.channel)
    }
}
