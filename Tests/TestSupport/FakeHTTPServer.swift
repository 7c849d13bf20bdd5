import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP server on 127.0.0.1, port 0, answering each request as the test scripts it:
/// any status, headers and body, or no answer at all (to test timeouts).
public final class FakeHTTPServer: @unchecked Sendable {
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        public var headers: [String: String]
        public var path: String { String(uri.split(separator: "?").first ?? "") }
        public func query(_ name: String) -> String? {
            URLComponents(string: uri)?.queryItems?.first { $0.name == name }?.value
        }
    }

    public enum Reply: Sendable {
        case respond(status: Int, headers: [(String, String)] = [], body: String)
        case hang
        /// The status line, headers and the start of `body`, then nothing (the connection stays open).
        case stallInBody(status: Int, body: String)
        /// This reply, after `seconds` (a slow server; other connections are answered meanwhile).
        indirect case after(seconds: Double, Reply)
        public static func json(_ body: String, status: Int = 200) -> Reply { .respond(status: status, headers: [("Content-Type", "application/json")], body: body) }
    }

    private let lock = NSLock()
    private var recorded: [Request] = []
    private var channel: (any Channel)?
    let handler: @Sendable (Request) -> Reply
    public private(set) var port = 0

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var requests: [Request] { lock.withLock { recorded } }

    public init(_ handler: @escaping @Sendable (Request) -> Reply) async throws {
        self.handler = handler
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(server: self))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    public func stop() async {
        try? await channel?.close().get()
    }

    fileprivate func record(_ request: Request) -> Reply {
        lock.withLock { recorded.append(request) }
        return handler(request)
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: FakeHTTPServer
        var head: HTTPRequestHead?

        init(server: FakeHTTPServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(head): self.head = head
            case .body: break
            case .end:
                guard let head else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                answer(server.record(Request(method: "\(head.method)", uri: head.uri, headers: headers)), context: context)
            }
        }

        func answer(_ reply: Reply, context: ChannelHandlerContext) {
            if case let .after(seconds, later) = reply {
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
                    bound.value.0.answer(later, context: bound.value.1)
                }
                return
            }
            if case let .stallInBody(status, body) = reply {
                var responseHeaders = HTTPHeaders([("Content-Type", "application/json")])
                responseHeaders.replaceOrAdd(name: "Content-Length", value: "\(body.utf8.count)")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: responseHeaders))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: String(body.prefix(body.count / 2)))))), promise: nil)
                return
            }
            guard case let .respond(status, extra, body) = reply else { return }
            var responseHeaders = HTTPHeaders(extra)
            responseHeaders.replaceOrAdd(name: "Content-Length", value: "\(body.utf8.count)")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: responseHeaders))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
