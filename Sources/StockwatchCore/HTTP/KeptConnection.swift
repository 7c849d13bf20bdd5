import Foundation
import NIOCore
import NIOHTTP1

/// One kept HTTP/1.1 connection of `KeptConnections`, one exchange on it at a time: it
/// writes the request, gathers the answer up to its cap, and ends the exchange exactly
/// once, with the answer, at the deadline, or when the connection fails or closes.
/// Everything but `start` and `close` runs on the channel's event loop.
final class KeptConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let eventLoop: any EventLoop
    private let pool: KeptConnections.OriginPool
    private var context: ChannelHandlerContext?
    private var exchange: KeptConnections.Exchange?
    private var answer: HTTPResponseHead?
    private var body = ByteBuffer()
    /// Between a 1xx answer's head and its end: the real answer comes after it.
    private var interim = false
    private var deadline: Scheduled<Void>?
    /// Whether the pool was told this connection is gone.
    private var gone = false
    /// What closed a new connection before its first exchange began (a TLS handshake that
    /// refused the peer's certificate, on a local peer quick enough to answer before the
    /// connect's callback ran): that exchange reports it rather than a bare close.
    private var closedBy: (any Error)?

    init(pool: KeptConnections.OriginPool, eventLoop: any EventLoop) {
        self.pool = pool
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The context holds this handler: let go of it once the channel is gone, or every
    /// connection of a long `notify --follow` would stay in memory.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Sends `exchange` here. A kept connection that closed meanwhile hands it back to the
    /// pool unsent; a new one that closed before anything was written fails it.
    func start(_ exchange: KeptConnections.Exchange, reused: Bool) {
        if eventLoop.inEventLoop {
            begin(exchange, reused: reused)
        } else {
            eventLoop.execute { self.begin(exchange, reused: reused) }
        }
    }

    func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { self.context?.close() ?? self.eventLoop.makeSucceededVoidFuture() }
    }

    private func begin(_ exchange: KeptConnections.Exchange, reused: Bool) {
        guard let context, !gone, context.channel.isActive else {
            if reused {
                pool.dispatch(exchange)
            } else {
                let failure = closedBy.map { HTTPTransport.failure($0, timeoutSeconds: exchange.timeoutSeconds, tlsHint: exchange.tlsHint) }
                exchange.done(.failure(failure ?? .closedByServer))
            }
            return
        }
        // It waited for a free connection past its deadline: failed unsent, not sent
        // and then reported as failed.
        guard exchange.deadline > .now() else {
            exchange.done(.failure(.noAnswer(within: exchange.timeoutSeconds)))
            return pool.release(self)
        }
        self.exchange = exchange
        answer = nil
        body.clear()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(deadline: exchange.deadline) { [self] in
            end(.failure(.noAnswer(within: exchange.timeoutSeconds)))
            channel.close(promise: nil)
        }
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange else { return }
        switch unwrapInboundIn(data) {
        case let .head(head):
            interim = head.status.code < 200 && head.status != .switchingProtocols
            if !interim { answer = head }
        case var .body(part):
            guard !interim else { return }
            guard body.readableBytes + part.readableBytes <= exchange.maxBody else {
                end(.failure(.overCap(exchange.maxBody)))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&part)
        case .end:
            if interim {
                interim = false
                return
            }
            guard let answer, let finished = take() else { return }
            let response = HTTPTransport.Response(status: Int(answer.status.code), headers: answer.headers, body: Data(body.readableBytesView))
            // Back in the pool before the caller resumes, so that its next POST finds
            // this connection instead of opening another.
            if answer.isKeepAlive {
                pool.release(self)
            } else {
                context.close(promise: nil)
            }
            finished.done(.success(response))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange {
            end(.failure(HTTPTransport.failure(error, timeoutSeconds: exchange.timeoutSeconds, tlsHint: exchange.tlsHint)))
        } else if closedBy == nil {
            closedBy = error
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(.failure(.closedByServer))
        if !gone {
            gone = true
            pool.lost(self)
        }
        context.fireChannelInactive()
    }

    /// Ends the exchange in flight, if any, once.
    private func end(_ outcome: KeptConnections.Outcome) {
        take()?.done(outcome)
    }

    /// The exchange in flight, no longer this connection's, its deadline cancelled.
    private func take() -> KeptConnections.Exchange? {
        guard let exchange else { return nil }
        self.exchange = nil
        deadline?.cancel()
        deadline = nil
        return exchange
    }
}
