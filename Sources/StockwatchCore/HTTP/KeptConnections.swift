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

    /// A URL taken apart once, with the pool of its origin: the channels post to a few
    /// fixed URLs, and a send reaches its pool without hashing the URL or the origin.
    struct Endpoint: Sendable {
        var pool: OriginPool
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

    private struct State {
        var endpoints: [String: Endpoint] = [:]
        var trusts: [(configuration: TLSConfiguration?, context: NIOSSLContext)] = []
        var pools: [Origin: OriginPool] = [:]
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
        switch endpoint(url, tls: tls) {
        case let .success(endpoint):
            await post(endpoint, headers: headers, body: body, timeoutSeconds: timeoutSeconds, maxBody: maxBody, tlsHint: tlsHint)
        case let .failure(error):
            .failure(error)
        }
    }

    /// A POST to an endpoint found before (`endpoint(_:tls:)`), as a channel's sends are.
    func post(_ endpoint: Endpoint, headers: [(String, String)], body: Data, timeoutSeconds: Int64, maxBody: Int, tlsHint: String?) async -> Outcome {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.target, headers: HTTPHeaders(headers))
        head.headers.add(name: "Host", value: endpoint.hostHeader)
        head.headers.add(name: "User-Agent", value: Self.userAgent)
        head.headers.add(name: "Content-Length", value: String(body.count))
        let bytes = ByteBuffer(bytes: body)
        let deadline = NIODeadline.now() + .seconds(timeoutSeconds)
        return await withCheckedContinuation { continuation in
            endpoint.pool.dispatch(Exchange(
                head: head, body: bytes, deadline: deadline, timeoutSeconds: timeoutSeconds, maxBody: maxBody, tlsHint: tlsHint,
                done: { continuation.resume(returning: $0) }))
        }
    }

    private static let userAgent = "stockwatch/\(version)"

    /// Connections open or being opened, over all origins.
    var openConnections: Int {
        state.withLockedValue { Array($0.pools.values) }.reduce(0) { $0 + $1.openConnections }
    }

    /// Closes every kept connection; a request made after this fails.
    func shutdown() async {
        let pools = state.withLockedValue { state -> [OriginPool] in
            state.shutDown = true
            return Array(state.pools.values)
        }
        for pool in pools { await pool.shutdown() }
    }

    /// The connections of one origin: at most `limit` open, the idle ones kept, and the
    /// requests waiting for one. Its own lock, so that sends to one origin never hash it.
    final class OriginPool: Sendable {
        let origin: Origin
        private let context: NIOSSLContext?
        private let limit: Int
        private let connectTimeout: TimeAmount

        private struct State {
            var idle: [KeptConnection] = []
            var open = 0
            var waiting = CircularBuffer<Exchange>()
            var shutDown = false
        }

        private let state = NIOLockedValueBox(State())

        init(origin: Origin, context: NIOSSLContext?, limit: Int, connectTimeout: TimeAmount) {
            self.origin = origin
            self.context = context
            self.limit = limit
            self.connectTimeout = connectTimeout
        }

        var openConnections: Int { state.withLockedValue(\.open) }

        func shutdown() async {
            let (idle, waiting) = state.withLockedValue { state -> ([KeptConnection], CircularBuffer<Exchange>) in
                state.shutDown = true
                defer { state.idle.removeAll(); state.waiting.removeAll() }
                return (state.idle, state.waiting)
            }
            for exchange in waiting { exchange.done(.failure(.shutDown)) }
            for closing in idle.map({ $0.close() }) { try? await closing.get() }
        }

        /// Sends on a kept connection, a new one, or once one is free.
        func dispatch(_ exchange: Exchange) {
            enum Next { case reuse(KeptConnection), connect, wait, closed }
            let next = state.withLockedValue { state -> Next in
                guard !state.shutDown else { return .closed }
                if let connection = state.idle.popLast() { return .reuse(connection) }
                if state.open < limit {
                    state.open += 1
                    return .connect
                }
                state.waiting.append(exchange)
                return .wait
            }
            switch next {
            case let .reuse(connection): connection.start(exchange, reused: true)
            case .connect: connect(first: exchange)
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
                if let exchange = state.waiting.popFirst() { return .send(exchange) }
                state.idle.append(connection)
                return .keep
            }
            switch next {
            case let .send(exchange): connection.start(exchange, reused: true)
            case .keep: break
            case .close: _ = connection.close()
            }
        }

        /// A connection that closed (or never opened): its place goes to the next waiting request.
        func lost(_ connection: KeptConnection?) {
            let next = state.withLockedValue { state -> Exchange? in
                if let connection { state.idle.removeAll { $0 === connection } }
                state.open -= 1
                guard !state.shutDown, let exchange = state.waiting.popFirst() else { return nil }
                state.open += 1
                return exchange
            }
            if let next { connect(first: next) }
        }

        private func connect(first exchange: Exchange) {
            let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
            let connection = KeptConnection(pool: self, eventLoop: eventLoop)
            let remaining = exchange.deadline - .now()
            guard remaining > .zero else {
                exchange.done(.failure(.noAnswer(within: exchange.timeoutSeconds)))
                lost(nil)
                return
            }
            // NIOSSL checks the certificate against this name, or against the peer's
            // address when there is none (an IP address is never sent as SNI).
            let serverName = KeptConnections.isIPAddress(origin.host) ? nil : origin.host
            let context = origin.secure ? self.context : nil
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
                    self.lost(nil)
                }
            }
        }
    }

    /// The URL's parts and its origin, made once per URL and trust.
    func endpoint(_ url: String, tls: TLSConfiguration?) -> Result<Endpoint, HTTPTransport.Failure> {
        Result { () throws(HTTPTransport.Failure) in try makeEndpoint(url, tls: tls) }
    }

    private func makeEndpoint(_ url: String, tls: TLSConfiguration?) throws(HTTPTransport.Failure) -> Endpoint {
        let invalid = HTTPTransport.Failure(message: "not a valid URL")
        let found = state.withLockedValue { state -> Endpoint? in
            guard let endpoint = state.endpoints[url] else { return nil }
            let origin = endpoint.pool.origin
            return origin.secure && !Self.same(state.trusts[origin.trust].configuration, tls) ? nil : endpoint
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
        let origin = Origin(secure: secure, host: host, port: port, trust: trust)
        let made = state.withLockedValue { state -> Endpoint? in
            guard !state.shutDown else { return nil }
            let pool = state.pools[origin] ?? OriginPool(
                origin: origin, context: secure ? state.trusts[trust].context : nil, limit: limit, connectTimeout: connectTimeout)
            state.pools[origin] = pool
            let endpoint = Endpoint(pool: pool, target: target, hostHeader: hostHeader)
            state.endpoints[url] = endpoint
            return endpoint
        }
        guard let made else { throw .shutDown }
        return made
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
