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
/// restarts with every byte, so without this a connection that sends nothing, a header
/// line now and then (slowloris), or bytes that never end a head would stay open for
/// ever. It closes a connection whose request head has not been parsed within the
/// deadline: the first from when the connection opens, each later one from its first
/// byte; and one over its address's limit. The `RequestGuard`, after the HTTP decoder,
/// says when a head was parsed and when a request ended: scanning the bytes for a blank
/// line instead would let a client that opens with CRLF CRLF (which the parser skips)
/// cancel the deadline and then hold the connection.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let headTimeout: TimeAmount
    private let peers: PeerConnections
    private var peer: String?
    private var deadline: Scheduled<Void>?
    private var awaitingHead = true

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
        startDeadline(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        if let peer { peers.close(peer) }
        peer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if awaitingHead, deadline == nil { startDeadline(context: context) }
        context.fireChannelRead(data)
    }

    /// The HTTP decoder parsed a request head in time.
    func headParsed() {
        awaitingHead = false
        deadline?.cancel()
        deadline = nil
    }

    /// A request ended: the next head's deadline starts with its first byte.
    func expectNextHead() {
        awaitingHead = true
        deadline?.cancel()
        deadline = nil
    }

    private func startDeadline(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: headTimeout) { loopBound.value.close(promise: nil) }
    }

    /// Answers with the API's JSON error, written straight to the socket (no HTTP encoder
    /// is in the way), and closes. `code` and `message` are our own constants.
    static func answerAndClose(_ status: String, code: String, message: String, in channel: any Channel) {
        let body = #"{"error":{"code":"\#(code)","message":"\#(message)"}}"#
        let bytes = "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        guard let context = try? channel.pipeline.syncOperations.context(handlerType: ConnectionGuard.self) else {
            channel.close(promise: nil)
            return
        }
        context.writeAndFlush(NIOAny(channel.allocator.buffer(string: bytes))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Right after the HTTP decoder, on each parsed request:
/// - a request it cannot parse (a garbage request line, a NUL or control byte in a header,
///   an oversized head) gets `400` and a close, instead of silence on an open connection;
/// - a declared body over the limit gets `413` and a close at once, before any of it is read;
/// - a body must arrive whole within the deadline of its head (a body that trickles in a
///   byte at a time would otherwise hold the connection, each byte restarting the idle
///   timeout), else the connection is closed;
/// - when a request ends, the `ConnectionGuard` starts watching for the next head.
/// It leaves the pipeline after a WebSocket upgrade request, whatever its path: once
/// upgraded what follows are frames, not request parts, and after a refused one the
/// decoder parses nothing more (the connection closes).
final class RequestGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart

    private let bodyTimeout: TimeAmount
    private let maximumBody: Int
    private var bodyDeadline: Scheduled<Void>?
    private var upgrading = false
    private var refused = false

    init(bodyTimeout: TimeAmount, maximumBody: Int) {
        self.bodyTimeout = bodyTimeout
        self.maximumBody = maximumBody
    }

    func handlerRemoved(context: ChannelHandlerContext) { bodyDeadline?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            connectionGuard(context)?.headParsed()
            if let declared = head.headers.first(name: "content-length").flatMap(Int.init), declared > maximumBody {
                refused = true
                ConnectionGuard.answerAndClose("413 Content Too Large", code: "too_large", message: "request body larger than \(maximumBody) bytes", in: context.channel)
                return
            }
            upgrading = StreamUpgradeGate.isUpgrade(head)
            if head.headers.contains(name: "content-length") || head.headers.contains(name: "transfer-encoding") {
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                bodyDeadline = context.eventLoop.scheduleTask(in: bodyTimeout) { loopBound.value.close(promise: nil) }
            }
        case .body:
            break
        case .end:
            bodyDeadline?.cancel()
            bodyDeadline = nil
            if upgrading {
                context.fireChannelRead(data)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            }
            connectionGuard(context)?.expectNextHead()
        }
        context.fireChannelRead(data)
    }

    private func connectionGuard(_ context: ChannelHandlerContext) -> ConnectionGuard? {
        try? context.pipeline.syncOperations.handler(type: ConnectionGuard.self)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else { return context.fireErrorCaught(error) }
        ConnectionGuard.answerAndClose("400 Bad Request", code: "bad_request", message: "malformed HTTP request", in: context.channel)
    }
}
