import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The channels' POSTs, on kept HTTP/1.1 connections per origin, built from NIO's own
/// TLS and HTTP/1.1 codec. AsyncHTTPClient (which still serves the providers' GETs) spent
/// 0.07–0.09 ms of CPU per POST, four times this path's cost, and 20,000 sends a second on
/// two cores leave less than that for the whole of notify (docs/benchmarks.md, issue 19).
///
/// The contract is `HTTPTransport.post`'s: one deadline over the whole exchange, connect
/// included; a cap on the answer; a 3xx is an answer, never followed; the channel's trust
/// roots (or the system's) with the certificate checked against the host name (or, for an
/// IP address, against the address); at most `limit` connections per origin, a request
/// waiting for a free one. A request is never sent twice: one that fails is the caller's
/// to retry. Only a kept connection found closed before anything was written on it is
/// passed over for another.
final class KeptConnections: Sendable {
    typealias Outcome = Result<HTTPTransport.Response, HTTPTransport.Failure>

    /// A URL taken apart once: the channels post to a few fixed URLs.
    struct Endpoint: Sendable {
        var origin: Origin
        var target: String
        var hostHeader: String
    }

    /// Where connections go, and the trust they are made with (an index of `trusts`).
    struct Origin: Hashable, Sendable {
        var secure: Bool
        var host: String
        var port: Int
        var trust: Int
    }

    /// One POST on its way: its request, deadline and cap, and whom to tell, once.
    struct Exchange: Sendable {
        var head: HTTPRequestHead
        var body: ByteBuffer
        var deadline: NIODeadline
        var timeoutSeconds: Int64
        var maxBody: Int
        var tlsHint: String?
        var done: @Sendable (Outcome) -> Void
    }

    private struct OriginState {
        var idle: [KeptConnection] = []
        var open = 0
        var waiting = CircularBuffer<Exchange>()
    }

    private struct State {
        var endpoints: [String: Endpoint] = [:]
        var trusts: [(configuration: TLSConfiguration?, context: NIOSSLContext)] = []
        var origins: [Origin: OriginState] = [:]
        var shutDown = false
    }

    private let state = NIOLockedValueBox(State())
    private let limit: Int
    private let connectTimeout: TimeAmount

    init(connectionsPerOrigin: Int, connectTimeoutSeconds: Int64) {
        limit = max(connectionsPerOrigin, 1)
        connectTimeout = .seconds(connectTimeoutSeconds)
    }

    func post(_ url: String, headers: [(String, String)], body: Data, timeoutSeconds: Int64, maxBody: Int, tls: TLSConfiguration?, tlsHint: String?) async -> Outcome {
        let endpoint: Endpoint
        do { endpoint = try self.endpoint(url, tls: tls) } catch { return .failure(error) }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.target, headers: HTTPHeaders(headers))
        head.headers.add(name: "Host", value: endpoint.hostHeader)
        head.headers.add(name: "User-Agent", value: "stockwatch/\(version)")
        head.headers.add(name: "Content-Length", value: String(body.count))
        let bytes = ByteBuffer(bytes: body)
        let deadline = NIODeadline.now() + .seconds(timeoutSeconds)
        return await withCheckedContinuation { continuation in
            dispatch(Exchange(
                head: head, body: bytes, deadline: deadline, timeoutSeconds: timeoutSeconds, maxBody: maxBody, tlsHint: tlsHint,
                done: { continuation.resume(returning: $0) }), to: endpoint.origin)
        }
    }

    /// Connections open or being opened, over all origins.
    var openConnections: Int { state.withLockedValue { $0.origins.values.reduce(0) { $0 + $1.open } } }

    /// Closes every kept connection; a request made after this fails.
    func shutdown() async {
        let (idle, waiting) = state.withLockedValue { state -> ([KeptConnection], [Exchange]) in
            state.shutDown = true
            let idle = state.origins.values.flatMap(\.idle)
            let waiting = state.origins.values.flatMap(\.waiting)
            for origin in state.origins.keys {
                state.origins[origin]?.idle.removeAll()
                state.origins[origin]?.waiting.removeAll()
            }
            return (idle, waiting)
        }
        for exchange in waiting { exchange.done(.failure(.shutDown)) }
        for closing in idle.map({ $0.close() }) { try? await closing.get() }
    }

    /// Sends on a kept connection, a new one, or once one is free.
    func dispatch(_ exchange: Exchange, to origin: Origin) {
        enum Next { case reuse(KeptConnection), connect(NIOSSLContext?), wait, closed }
        let next = state.withLockedValue { state -> Next in
            guard !state.shutDown else { return .closed }
            if let connection = state.origins[origin, default: OriginState()].idle.popLast() { return .reuse(connection) }
            if state.origins[origin]!.open < limit {
                state.origins[origin]!.open += 1
                return .connect(origin.secure ? state.trusts[origin.trust].context : nil)
            }
            state.origins[origin]!.waiting.append(exchange)
            return .wait
        }
        switch next {
        case let .reuse(connection): connection.start(exchange, reused: true)
        case let .connect(context): connect(to: origin, context: context, first: exchange)
        case .wait: break
        case .closed: exchange.done(.failure(.shutDown))
        }
    }

    /// A connection whose answer ended and which the server keeps open: the next waiting
    /// request goes on it, or it waits for one.
    func release(_ connection: KeptConnection) {
        enum Next { case send(Exchange), keep, close }
        let next = state.withLockedValue { state -> Next in
            guard !state.shutDown else { return .close }
            if let exchange = state.origins[connection.origin]?.waiting.popFirst() { return .send(exchange) }
            state.origins[connection.origin]?.idle.append(connection)
            return .keep
        }
        switch next {
        case let .send(exchange): connection.start(exchange, reused: true)
        case .keep: break
        case .close: _ = connection.close()
        }
    }

    /// A connection that closed (or never opened): its place goes to the next waiting request.
    func lost(_ connection: KeptConnection?, origin: Origin) {
        let next = state.withLockedValue { state -> (Exchange, NIOSSLContext?)? in
            if let connection { state.origins[origin]?.idle.removeAll { $0 === connection } }
            state.origins[origin]?.open -= 1
            guard !state.shutDown, let exchange = state.origins[origin]?.waiting.popFirst() else { return nil }
            state.origins[origin]?.open += 1
            return (exchange, origin.secure ? state.trusts[origin.trust].context : nil)
        }
        if let (exchange, context) = next { connect(to: origin, context: context, first: exchange) }
    }

    private func connect(to origin: Origin, context: NIOSSLContext?, first exchange: Exchange) {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let connection = KeptConnection(pool: self, origin: origin, eventLoop: eventLoop)
        let remaining = exchange.deadline - .now()
        guard remaining > .zero else {
            exchange.done(.failure(.noAnswer(within: exchange.timeoutSeconds)))
            lost(nil, origin: origin)
            return
        }
        // NIOSSL checks the certificate against this name, or against the peer's
        // address when there is none (an IP address is never sent as SNI).
        let serverName = Self.isIPAddress(origin.host) ? nil : origin.host
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(min(connectTimeout, remaining))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
        let connected = if let address = try? SocketAddress(ipAddress: origin.host, port: origin.port) {
            bootstrap.connect(to: address)
        } else {
            bootstrap.connect(host: origin.host, port: origin.port)
        }
        connected.whenComplete { result in
            switch result {
            case .success: connection.start(exchange, reused: false)
            case let .failure(error):
                exchange.done(.failure(HTTPTransport.failure(error, timeoutSeconds: exchange.timeoutSeconds, tlsHint: exchange.tlsHint)))
                self.lost(nil, origin: origin)
            }
        }
    }

    /// The URL's parts and its origin, made once per URL and trust.
    private func endpoint(_ url: String, tls: TLSConfiguration?) throws(HTTPTransport.Failure) -> Endpoint {
        let invalid = HTTPTransport.Failure(message: "not a valid URL")
        let found = state.withLockedValue { state -> Endpoint? in
            guard let endpoint = state.endpoints[url] else { return nil }
            return endpoint.origin.secure && !Self.same(state.trusts[endpoint.origin.trust].configuration, tls) ? nil : endpoint
        }
        if let found { return found }
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = parts.host, !host.isEmpty, parts.user == nil, parts.password == nil
        else { throw invalid }
        let secure = scheme == "https"
        let port = parts.port ?? (secure ? 443 : 80)
        guard (1...65535).contains(port) else { throw invalid }
        var target = parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath
        if let query = parts.percentEncodedQuery { target += "?" + query }
        let named = host.contains(":") ? "[\(host)]" : host
        let hostHeader = port == (secure ? 443 : 80) ? named : "\(named):\(port)"
        let trust = try secure ? self.trust(tls) : 0
        let endpoint = Endpoint(origin: Origin(secure: secure, host: host, port: port, trust: trust), target: target, hostHeader: hostHeader)
        state.withLockedValue { $0.endpoints[url] = endpoint }
        return endpoint
    }

    /// The index of the TLS context made from `tls` (nil: the system's roots), made the
    /// first time it is asked for. Only HTTP/1.1 is offered.
    private func trust(_ tls: TLSConfiguration?) throws(HTTPTransport.Failure) -> Int {
        if let index = state.withLockedValue({ $0.trusts.firstIndex { Self.same($0.configuration, tls) } }) { return index }
        var configuration = tls ?? TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["http/1.1"]
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: configuration) } catch {
            throw HTTPTransport.Failure(message: "TLS failed (\(error))")
        }
        return state.withLockedValue { state in
            if let index = state.trusts.firstIndex(where: { Self.same($0.configuration, tls) }) { return index }
            state.trusts.append((tls, context))
            return state.trusts.count - 1
        }
    }

    private static func same(_ a: TLSConfiguration?, _ b: TLSConfiguration?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case let (a?, b?): a.bestEffortEquals(b)
        default: false
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
