import Crypto
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOPosix
import StockwatchCore
import StockwatchStore

/// The user a request authenticated as.
public struct AuthenticatedUser: Sendable, Equatable {
    public var id: Int64
    public var name: String
    /// The stored hash the token matched: a stream ends when it no longer exists.
    var tokenHash: String
}

/// One context for the API routes and the WebSocket upgrade, so that both pass through
/// the same authentication middleware.
public struct APIRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public var user: AuthenticatedUser?
    /// The connection, so that the stream can close a client that stopped reading.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }

    /// The largest request body the API reads (an alert or a device is a few hundred bytes).
    public var maxUploadSize: Int { APIServer.maximumBody }

    /// The authenticated user; routes behind `BearerAuthentication` always have one.
    func requireUser() throws -> AuthenticatedUser {
        guard let user else { throw APIError.unauthorized }
        return user
    }
}

/// `Authorization: Bearer TOKEN`, checked against the SHA-256 hashes `user add` stored.
/// On the stream, also `Sec-WebSocket-Protocol: stockwatch.bearer, TOKEN`: the browser
/// WebSocket API cannot send an Authorization header, only subprotocols.
struct BearerAuthentication: RouterMiddleware {
    static let subprotocol = "stockwatch.bearer"

    let database: any AccountStore
    var acceptsSubprotocol = false

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        let token = Self.token(
            authorization: request.headers[.authorization], subprotocols: acceptsSubprotocol ? request.headers[.secWebSocketProtocol] : nil)
        guard let token else { throw APIError.unauthorized }
        let database = self.database
        guard let user = try await blocking({ try Self.user(token: token, database: database) }) else { throw APIError.unauthorized }
        var context = context
        context.user = user
        return try await next(request, context)
    }

    /// The user whose stored hash matches the token's, or nil. The lookup by the hash
    /// needs no constant-time comparison: what its timing could leak is how much of the
    /// SHA-256 of a guess matches a stored hash, which tells nothing about the token (32
    /// random bytes) that hash came from.
    static func user(token: String, database: any AccountStore) throws -> AuthenticatedUser? {
        let hash = APIToken.hash(token)
        return try database.user(tokenHash: hash).map { AuthenticatedUser(id: $0.id, name: $0.name, tokenHash: $0.tokenHash) }
    }

    /// From `Authorization: Bearer TOKEN`, or (when given) `Sec-WebSocket-Protocol:
    /// stockwatch.bearer, TOKEN`.
    static func token(authorization: String?, subprotocols: String?) -> String? {
        if let header = authorization {
            guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
            return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        guard let offered = subprotocols else { return nil }
        let protocols = offered.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard protocols.count == 2, protocols[0] == subprotocol else { return nil }
        return protocols[1]
    }
}

/// Browsers may call the API and open the stream only from `[serve] allowed_origins`.
/// Only browser origins are checked (http, https, or "null"): browsers always send one
/// and a page cannot forge it, while other clients send none (the mobile app, curl) or
/// one of their own making (WebSocket libraries send ws://host), which proves nothing.
struct OriginCheck: RouterMiddleware {
    let allowedOrigins: Set<String>

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        if let origin = request.headers[.origin], Self.isBrowserOrigin(origin), !allowedOrigins.contains(origin) {
            // Answered here, outside CORSMiddleware, so that a preflight is refused too.
            return ErrorRendering.response(for: APIError.forbiddenOrigin(origin), request: request, logger: context.logger)
        }
        return try await next(request, context)
    }

    static func isBrowserOrigin(_ origin: String) -> Bool {
        let lowered = origin.lowercased()
        return lowered == "null" || lowered.hasPrefix("http://") || lowered.hasPrefix("https://")
    }
}

/// Runs blocking SQLite work (GRDB's synchronous API, which may wait up to the busy
/// timeout while a cron process writes) on threads of its own, never on an event loop.
/// More threads than cores: a few requests waiting for the write lock must not stall
/// authentication, reads and the stream's poll.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await databaseThreads.runIfActive(body)
}

let databaseThreads: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 16)
    pool.start()
    return pool
}()

