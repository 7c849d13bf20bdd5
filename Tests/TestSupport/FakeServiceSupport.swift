import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Plumbing shared by FakeFCM and FakeWebhookReceiver: a small, fast HTTP/1.1 keep-alive server
// whose handler runs on the event loop and answers synchronously (or not at all, to hang).

struct RawRequest {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var body: ByteBuffer

    var path: Substring {
        if let q = uri.firstIndex(of: "?") { return uri[..<q] }
        return uri[...]
    }

    var bodyData: Data { body.withUnsafeReadableBytes { Data($0) } }
}

struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: String
    /// Answer only after this long (a slow receiver).
    var delay: TimeAmount? = nil

    static func json(_ status: Int, _ body: String, headers: [(String, String)] = []) -> RawResponse {
        RawResponse(status: status, headers: [("Content-Type", "application/json; charset=UTF-8")] + headers, body: body)
    }
}

final class RawHTTPServer: @unchecked Sendable {
    typealias Handle = @Sendable (RawRequest) -> RawResponse?

    /// Request bodies larger than this are answered 413 without calling the handler.
    static let maxBody = 1 << 20

    private let lock = NSLock()
    private var children: [ObjectIdentifier: any Channel] = [:]
    private var serverChannel: (any Channel)?
    private(set) var port = 0

    /// `tls`: served over TLS with this context (see `TestCertificate`).
    init(tls: NIOSSLContext? = nil, handle: @escaping Handle) async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                self.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RawHandler(handle: handle))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        serverChannel = channel
        port = channel.localAddress?.port ?? 0
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        lock.withLock { children[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = lock.withLock { children.removeValue(forKey: id) }
        }
    }

    /// Closes the listening socket and every open connection (including hanging ones).
    func stop() async {
        let server = lock.withLock { () -> (any Channel)? in
            defer { serverChannel = nil }
            return serverChannel
        }
        try? await server?.close().get()
        let open = lock.withLock { Array(children.values) }
        for channel in open { try? await channel.close().get() }
    }
}

private final class RawHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let handle: RawHTTPServer.Handle
    var head: HTTPRequestHead?
    var body: ByteBuffer?
    var tooLarge = false

    init(handle: @escaping RawHTTPServer.Handle) { self.handle = handle }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            self.head = head
            body = nil
            tooLarge = false
        case var .body(chunk):
            if tooLarge { return }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
            if body!.readableBytes > RawHTTPServer.maxBody {
                tooLarge = true
                body = nil
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let response: RawResponse?
            if tooLarge {
                response = .json(413, #"{"error":{"code":413,"message":"Request body too large.","status":"INVALID_ARGUMENT"}}"#)
            } else {
                let request = RawRequest(
                    method: head.method, uri: head.uri, headers: head.headers,
                    body: body ?? context.channel.allocator.buffer(capacity: 0))
                body = nil
                response = handle(request)
            }
            guard let response else { return }  // hang: never answer (the pipeline handler holds later requests)
            if let delay = response.delay {
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: delay) {
                    bound.value.0.write(response, keepAlive: head.isKeepAlive, version: head.version, context: bound.value.1)
                }
                return
            }
            write(response, keepAlive: head.isKeepAlive, version: head.version, context: context)
        }
    }

    private func write(_ response: RawResponse, keepAlive: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        var headers = HTTPHeaders(response.headers)
        let count = response.body.utf8.count
        headers.add(name: "Content-Length", value: String(count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: response.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        if count > 0 {
            var buffer = context.channel.allocator.buffer(capacity: count)
            buffer.writeString(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

// MARK: - Small helpers

enum FakeJSON {
    /// A JSON string literal (with quotes) for `s`.
    static func string(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func object(_ data: Data) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: data, options: [])) as? [String: Any]
    }
}

enum Base64URL {
    static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Strict: only the base64url alphabet, no padding.
    static func decode(_ s: Substring) -> Data? {
        var standard = ""
        standard.reserveCapacity(s.utf8.count + 3)
        for c in s.unicodeScalars {
            switch c {
            case "A"..."Z", "a"..."z", "0"..."9": standard.unicodeScalars.append(c)
            case "-": standard += "+"
            case "_": standard += "/"
            default: return nil
            }
        }
        switch standard.utf8.count % 4 {
        case 1: return nil
        case 2: standard += "=="
        case 3: standard += "="
        default: break
        }
        return Data(base64Encoded: standard)
    }
}

enum SecureFile {
    /// Writes `contents` to `path`, creating or truncating it, with mode 0600.
    static func write(_ contents: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw POSIXFailure(operation: "open \(path)", code: errno) }
        defer { _ = close(fd) }
        guard fchmod(fd, 0o600) == 0 else { throw POSIXFailure(operation: "chmod \(path)", code: errno) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        try handle.write(contentsOf: Data(contents.utf8))
    }
}

struct POSIXFailure: Error, CustomStringConvertible {
    var operation: String
    var code: Int32
    var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

func currentUnixTime() -> Double { Date().timeIntervalSince1970 }

/// Polls `condition` until it holds (true) or `timeout` passes (false): tests wait on
/// conditions, not on sleeps.
public func waitUntil(timeout: Duration, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while !condition() {
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return true
}
