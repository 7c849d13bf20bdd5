import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StockwatchCore
import StockwatchModel
import StockwatchStore

/// `stockwatch serve`: the mobile app's JSON API and its WebSocket stream, on Hummingbird.
/// Cron processes keep writing the database; this process reads what they commit.
public struct APIServer: Sendable {
    /// Request bodies and inbound WebSocket messages larger than this are refused.
    public static let maximumBody = 64 * 1024
    /// The most rows one list request returns.
    static let maximumLimit = 500

    let database: any DataStore
    let config: Config
    let logger: Logger
    let pollInterval: Duration?

    /// Logs go to stderr: warnings and errors, plus each start and stop with `verbose`.
    /// Request lines are not logged (they would carry users' symbols; never tokens).
    public init(database: any DataStore, config: Config, verbose: Bool = false, pollInterval: Duration? = nil) {
        self.database = database
        self.config = config
        var logger = Logger(label: "stockwatch.serve") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = verbose ? .info : .warning
        self.logger = logger
        self.pollInterval = pollInterval
    }

    /// Serves until SIGTERM or SIGINT (or the task is cancelled), then closes every
    /// connection and returns. `onListening` gets the bound address (for port 0).
    public func run(listen: ListenAddress, onListening: @escaping @Sendable (ListenAddress) -> Void = { _ in }) async throws(StockwatchError) {
        try await Self.checkAddress(listen)
        let watchdog = ShutdownWatchdog(exitAfter: .seconds(15), logger: logger)
        defer { watchdog.cancel() }
        // If the server is not listening in time (a bind failure lost in ServiceGroup's
        // cancellation deadlock, see ShutdownWatchdog), the process exits 69 anyway.
        watchdog.startDeadline(after: .seconds(30), exitStatus: StockwatchError.unavailable("").exitStatus.rawValue,
                                             message: "cannot listen on \(listen): serve did not start within 30 s")
        let hub = StreamHub(history: HistoryService(database: database), maxConnectionsPerUser: config.serve.maxConnectionsPerUser, pollInterval: pollInterval, logger: logger)
        do {
            try await hub.start()
        } catch {
            throw Self.translate(error, listen: listen)
        }
        let streamResponder = streamRouter(hub: hub).buildResponder()
        let database = self.database
        let peers = PeerConnections(limit: config.serve.maxConnectionsPerAddress)
        let channelConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(
            // An HTTP connection that sends nothing for a minute is closed.
            http1: .init(idleTimeout: .seconds(60)),
            ws: .init(maxFrameSize: Self.maximumBody, autoPing: .enabled(timePeriod: .seconds(30)), closeTimeout: StreamConnection.closeHandshakeTimeout))
        let app = Application(
            router: apiRouter(),
            // Hummingbird's HTTP/1 + WebSocket channel, with the token checked before an
            // upgrade is attempted (see StreamUpgradeGate).
            server: HTTPServerBuilder { responder in
                GatedWebSocketChannel(
                    inner: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: streamResponder, configuration: channelConfiguration),
                    database: database, headTimeout: .seconds(config.serve.requestHeadTimeoutSeconds), peers: peers)
            },
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "stockwatch"),
            onServerRunning: { channel in
                watchdog.started()
                onListening(ListenAddress(host: listen.host, port: channel.localAddress?.port ?? listen.port))
            },
            logger: logger)
        // Services shut down in reverse order: the hub first, ending every stream, then the
        // server, which waits for its connections. A client that does not answer its close
        // frame cannot hold the process longer than the maximum.
        // A service that fails (the address in use) makes the group cancel the others: the
        // watchdog then bounds that shutdown as it bounds one asked for by a signal.
        let server = WatchedService(inner: app, watchdog: watchdog) { error in Self.translate(error, listen: listen) }
        var group = ServiceGroupConfiguration(
            services: [.init(service: server), .init(service: hub, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(10)
        do {
            try await ServiceGroup(configuration: group).run()
            logger.info("stopped")
        } catch {
            throw Self.translate(error, listen: listen)
        }
    }

    /// A trial bind, released at once: an address in use (or not this machine's) is exit 69
    /// with the system's reason before anything starts. The same failure inside
    /// Hummingbird can be lost when ServiceGroup's cancellation deadlocks.
    static func checkAddress(_ listen: ListenAddress) async throws(StockwatchError) {
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: listen.host, port: listen.port).get()
            try await channel.close()
        } catch {
            throw translate(error, listen: listen)
        }
    }

    static func translate(_ error: any Error, listen: ListenAddress) -> StockwatchError {
        switch error {
        case let error as StockwatchError: error
        case let error as IOError: .unavailable("cannot listen on \(listen): \(String(cString: strerror(error.errnoCode)))")
        default: .unavailable("serve stopped: \(error)")
        }
    }

    /// Every path the API answers and its methods (as openapi.yaml lists them; a test
    /// compares the two): a known path asked with another method answers 405 with Allow.
    static let routes: [(path: String, methods: [String])] = [
        ("/healthz", ["GET"]), ("/v1/me", ["GET", "PATCH"]), ("/v1/alerts", ["GET", "POST"]), ("/v1/alerts/{id}", ["GET", "DELETE"]),
        ("/v1/alerts/{id}/pause", ["POST"]), ("/v1/alerts/{id}/resume", ["POST"]), ("/v1/alerts/{id}/snooze", ["POST", "DELETE"]),
        ("/v1/devices", ["GET", "POST"]), ("/v1/devices/{id}", ["DELETE"]), ("/v1/quotes", ["GET"]),
        ("/v1/notifications", ["GET"]), ("/v1/notifications/unread_count", ["GET"]), ("/v1/notifications/read", ["POST"]),
        ("/v1/notifications/dismiss", ["POST"]), ("/v1/stream", ["GET"]),
    ]

    /// The methods of the route `path` matches ({id} matches any one segment); none when
    /// it matches no route.
    static func methods(forPath path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for route in routes {
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: false)
            guard pattern.count == segments.count else { continue }
            if zip(pattern, segments).allSatisfy({ $0 == $1 || ($0.hasPrefix("{") && !$1.isEmpty) }) { return route.methods }
        }
        return []
    }

    func apiRouter() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        // Origin check, then CORS headers, then errors rendered as JSON responses: inside
        // CORSMiddleware, which would otherwise wrap a thrown error into a type of its own.
        router.add(middleware: OriginCheck(allowedOrigins: Set(config.serve.allowedOrigins)))
        router.add(middleware: CORSMiddleware(allowOrigin: .originBased, allowMethods: [.get, .post, .patch, .delete, .options]))
        router.add(middleware: ErrorRendering())
        router.get("healthz") { _, _ in "ok\n" }
        let v1 = router.group("v1").add(middleware: BearerAuthentication(database: database))
        let routes = APIRoutes(database: database, config: config)
        v1.get("me") { _, context in try await routes.me(user: context.requireUser()) }
        v1.patch("me") { request, context in try await routes.changeMe(request, user: context.requireUser()) }
        v1.get("alerts") { request, context in try await routes.listAlerts(request, user: context.requireUser()) }
        v1.post("alerts") { request, context in try await routes.addAlert(request, user: context.requireUser()) }
        v1.get("alerts/:id") { _, context in try await routes.showAlert(context.parameters.require("id", as: Int64.self), user: context.requireUser()) }
        v1.post("alerts/:id/pause") { _, context in try await routes.pauseAlert(context.parameters.require("id", as: Int64.self), user: context.requireUser()) }
        v1.post("alerts/:id/resume") { _, context in try await routes.resumeAlert(context.parameters.require("id", as: Int64.self), user: context.requireUser()) }
        v1.post("alerts/:id/snooze") { request, context in try await routes.snoozeAlert(context.parameters.require("id", as: Int64.self), request, user: context.requireUser()) }
        v1.delete("alerts/:id/snooze") { _, context in try await routes.unsnoozeAlert(context.parameters.require("id", as: Int64.self), user: context.requireUser()) }
        v1.delete("alerts/:id") { _, context in try await routes.removeAlert(context.parameters.require("id", as: Int64.self), user: context.requireUser()) }
        v1.get("devices") { request, context in try await routes.listDevices(request, user: context.requireUser()) }
        v1.post("devices") { request, context in try await routes.addDevice(request, user: context.requireUser()) }
        v1.delete("devices/:id") { _, context in try await routes.removeDevice(context.parameters.require("id", as: Int64.self), user: context.requireUser()) }
        v1.get("quotes") { request, _ in try await routes.quotes(request) }
        v1.get("notifications") { request, context in try await routes.notifications(request, user: context.requireUser()) }
        v1.get("notifications/unread_count") { _, context in try await routes.unreadCount(user: context.requireUser()) }
        v1.post("notifications/read") { request, context in try await routes.markNotifications(request, as: .read, user: context.requireUser()) }
        v1.post("notifications/dismiss") { request, context in try await routes.markNotifications(request, as: .dismissed, user: context.requireUser()) }
        // Reached by an authenticated request that is not a WebSocket upgrade.
        v1.get("stream") { request, _ -> Response in
            if let problem = request.headers[HTTPField.Name(StreamUpgradeGate.problemHeader)!] { throw APIError.badUpgrade(problem) }
            throw APIError.upgradeRequired
        }
        return router
    }

    /// Upgrade requests only, whose token StreamUpgradeGate has checked (a request that
    /// fails it reaches `apiRouter` as plain HTTP and gets its JSON 401). Hummingbird
    /// answers an upgrade refused here (a browser origin not allowed, a user at the
    /// stream limit) with a bare 400.
    func streamRouter(hub: StreamHub) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: OriginCheck(allowedOrigins: Set(config.serve.allowedOrigins)))
        router.add(middleware: BearerAuthentication(database: database, acceptsSubprotocol: true))
        router.ws("v1/stream") { request, context in
            // A user at the limit is refused before the upgrade (Hummingbird's bare 400).
            guard await hub.hasRoom(for: try context.requireUser()) else { return .dontUpgrade }
            // A browser fails the connection unless the server picks one offered subprotocol.
            let offered = request.headers[.secWebSocketProtocol]?.hasPrefix(BearerAuthentication.subprotocol) ?? false
            return .upgrade(offered ? [.secWebSocketProtocol: BearerAuthentication.subprotocol] : [:])
        } onUpgrade: { inbound, outbound, context in
            guard let user = context.requestContext.user else { return }
            try await StreamConnection(hub: hub, history: HistoryService(database: database), user: user, channel: context.requestContext.channel, logger: context.logger).run(inbound: inbound, outbound: outbound)
        }
        return router
    }
}
