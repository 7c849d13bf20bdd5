import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1
import StockwatchCore
import StockwatchStore

/// Hummingbird answers every refused WebSocket upgrade with a bare 400. So that a missing
/// or wrong token gets the API's 401 (as JSON) before anything is upgraded, this handler
/// sits in front of the upgrade handler and checks the token of an upgrade request
/// first: a request that fails loses its upgrade headers and goes on as plain HTTP, where
/// the router answers it; one that passes goes on unchanged, and the handler leaves the
/// pipeline (after an upgrade the bytes are WebSocket frames, not HTTP).
final class StreamUpgradeGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    /// Parts that arrived while a token was being checked (a GET has a head and an end).
    private static let maximumHeld = 16
    private let database: any AccountStore
    private var held: [HTTPServerRequestPart]?

    init(database: any AccountStore) { self.database = database }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if held != nil {
            held!.append(part)
            if held!.count > Self.maximumHeld { context.close(promise: nil) }
            return
        }
        guard case let .head(head) = part, Self.isUpgrade(head) else {
            context.fireChannelRead(data)
            return
        }
        held = []
        // An upgrade that cannot be a handshake is refused like a wrong token; Hummingbird's
        // upgrader would answer it nothing at all, the router answers 400 (after the token
        // check every /v1 route has).
        let problem = Self.malformedUpgrade(head)
        let token = BearerAuthentication.token(
            authorization: head.headers.first(name: "authorization"), subprotocols: head.headers.first(name: "sec-websocket-protocol"))
        let database = self.database
        let check: EventLoopFuture<Bool> = token.flatMap { token in
            problem == nil ? databaseThreads.runIfActive(eventLoop: context.eventLoop) { try BearerAuthentication.user(token: token, database: database) != nil } : nil
        } ?? context.eventLoop.makeSucceededFuture(false)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let boundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        check.whenComplete { result in
            let context = boundContext.value, gate = boundSelf.value
            let allowed = (try? result.get()) ?? false
            var forwarded = head
            if !allowed {
                // The HTTP decoder saw an upgrade and parses nothing after it, so the
                // connection is closed once this request is answered.
                forwarded.headers.remove(name: "upgrade")
                forwarded.headers.replaceOrAdd(name: "connection", value: "close")
                if let problem { forwarded.headers.replaceOrAdd(name: Self.problemHeader, value: problem) }
            }
            let rest = gate.held ?? []
            gate.held = nil
            context.fireChannelRead(gate.wrapInboundOut(.head(forwarded)))
            for part in rest { context.fireChannelRead(gate.wrapInboundOut(part)) }
            context.fireChannelReadComplete()
            if allowed { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
        }
    }

    /// Marks a request whose upgrade was malformed, for the `/v1/stream` route.
    static let problemHeader = "stockwatch-upgrade-problem"

    /// Why an upgrade request cannot be a WebSocket handshake (RFC 6455, 4.2.1), if so.
    static func malformedUpgrade(_ head: HTTPRequestHead) -> String? {
        let key = head.headers.first(name: "sec-websocket-key") ?? ""
        guard Data(base64Encoded: key)?.count == 16 else { return "a WebSocket upgrade needs Sec-WebSocket-Key: 16 bytes in base64" }
        guard head.headers.first(name: "sec-websocket-version") == "13" else { return "a WebSocket upgrade needs Sec-WebSocket-Version: 13" }
        return nil
    }

    /// As NIO's upgrader reads it: comma-separated lists, any case (`Upgrade: websocket, x`
    /// upgrades too, and must not skip the token check).
    static func isUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
            && head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }
}

/// Hummingbird's HTTP/1 + WebSocket channel with the gate inserted before its upgrade
/// handler, the connection guard first and the answer to malformed requests after the
/// HTTP decoder.
struct GatedWebSocketChannel: ServerChildChannel {
    let inner: HTTP1WebSocketUpgradeChannel
    let database: any AccountStore
    let headTimeout: TimeAmount
    let peers: PeerConnections

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1WebSocketUpgradeChannel.Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let upgrader = try pipeline.handler(type: NIOTypedHTTPServerUpgradeHandler<HTTP1WebSocketUpgradeChannel.UpgradeResult>.self)
            try pipeline.addHandler(StreamUpgradeGate(database: database), position: .before(upgrader))
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(RequestGuard(bodyTimeout: headTimeout, maximumBody: APIServer.maximumBody), position: .after(decoder))
            try pipeline.addHandler(ConnectionGuard(headTimeout: headTimeout, peers: peers), position: .first)
            return value
        }
    }

    func handle(value: HTTP1WebSocketUpgradeChannel.Value, logger: Logger) async {
        // Hummingbird logs here, as errors, what the clients do to their own connections:
        // one closed before its first request head (by the guard above, or the client)
        // never negotiated its upgrade. A thousand hostile sockets must not write a
        // thousand error lines; requests and streams log through their own loggers.
        var connectionLogger = logger
        connectionLogger.logLevel = .critical
        await inner.handle(value: value, logger: connectionLogger)
    }
}
