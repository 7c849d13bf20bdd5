import Foundation
import HummingbirdWebSocket
import NIOWebSocket
import Logging
import ServiceLifecycle
import StockwatchCore
import StockwatchStore

/// The one reader behind every WebSocket client: it reads the quotes, notifications and
/// notification state changes that other processes (or this one's API) committed, in commit order (`StreamStore`), and fans each out to
/// the clients that want it. On PostgreSQL it reads when a commit's NOTIFY wakes it (and
/// every second besides, and after its listening connection comes back); on SQLite it
/// polls. Short read transactions never hold a snapshot open, so WAL checkpoints of the
/// cron processes are not held back.
actor StreamHub: Service {
    /// Messages a client may have queued before it counts as too slow and is dropped.
    static let clientBuffer = 1024
    /// Rows read per poll; a burst larger than this is sent over the next polls.
    static let batch = 5000
    /// About this often the users' tokens are read again, so that a removed user's
    /// streams are closed.
    static let tokenCheckInterval: Duration = .seconds(1)
    /// The close code of a stream whose user was removed (or whose token changed).
    static let userRemoved = WebSocketErrorCode.unknown(4001)

    struct Client {
        let user: AuthenticatedUser
        let outbox: AsyncStream<StreamOutgoing>.Continuation
        /// Closes the connection itself: a writer blocked on a client that stopped
        /// reading would never see its outbox end.
        let close: @Sendable () -> Void
        var symbols: Set<String> = []
    }

    private let history: HistoryService
    private let maxConnectionsPerUser: Int
    /// How often to read without a wake-up: nil for 100 ms when polling, 1 s when woken.
    private let pollInterval: Duration?
    private let logger: Logger
    private var clients: [Int: Client] = [:]
    private var subscribers: [String: Set<Int>] = [:]
    private var clientsOfUser: [Int64: Set<Int>] = [:]
    /// The observed time of the newest quote streamed per symbol: an older one stored
    /// later (a backfill) is history, not a live price, and is not streamed.
    private var newestStreamed: [String: Date] = [:]
    private var nextClientID = 1
    private var position: StreamPosition?
    private var watch: (any StoreWatch)?
    private let bell = Bell()
    private var lastTokenCheck = ContinuousClock.now

    init(history: HistoryService, maxConnectionsPerUser: Int, pollInterval: Duration? = nil, logger: Logger = Logger(label: "stockwatch.serve")) {
        self.history = history
        self.maxConnectionsPerUser = maxConnectionsPerUser
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// Listens for commits, then reads where the stream starts: what commits after this
    /// streams. `APIServer` calls it before it listens, so that no client can subscribe
    /// before the start and miss a quote committed in between; `run` calls it if not.
    func start() async throws {
        guard position == nil else { return }
        let history = self.history
        let bell = self.bell
        // Listening before the start is read: what commits after it rings.
        watch = try await history.watchStream { bell.ring() }
        position = try await blocking { try history.streamStart() }
    }

    /// Polls until graceful shutdown or cancellation, then ends every client's stream.
    func run() async throws {
        try await start()
        defer { watch?.stop() }
        let bell = self.bell
        let interval = pollInterval ?? (watch == nil ? .milliseconds(100) : .seconds(1))
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var more = false
                do {
                    more = try await self.poll()
                } catch {
                    // Shut down between the loop's check and the poll's read (the database
                    // threads refuse work for a cancelled task): nothing failed, and serve's
                    // stderr stays quiet (the reliability script's hostile section saw it once).
                    if error is CancellationError || Task.isCancelled { break }
                    self.logger.warning("stream poll failed", metadata: ["error": "\(error)"])
                }
                if more { continue }
                await withTaskCancellationHandler { await bell.wait(upTo: interval) } onCancel: { bell.ring() }
            }
        }
        closeAll()
    }

    /// Whether the user may open one more stream (checked before the upgrade; `register`
    /// enforces it again for two connects racing).
    func hasRoom(for user: AuthenticatedUser) -> Bool {
        clientsOfUser[user.id, default: []].count < maxConnectionsPerUser
    }

    /// A new client, or nil when the user already has the most connections allowed.
    func register(_ user: AuthenticatedUser, close: @escaping @Sendable () -> Void = {}) -> (id: Int, outbox: AsyncStream<StreamOutgoing>)? {
        guard clientsOfUser[user.id, default: []].count < maxConnectionsPerUser else { return nil }
        let (stream, continuation) = AsyncStream.makeStream(of: StreamOutgoing.self, bufferingPolicy: .bufferingOldest(Self.clientBuffer))
        let id = nextClientID
        nextClientID += 1
        clients[id] = Client(user: user, outbox: continuation, close: close)
        clientsOfUser[user.id, default: []].insert(id)
        return (id, stream)
    }

    func unregister(_ id: Int) {
        guard let client = clients.removeValue(forKey: id) else { return }
        for symbol in client.symbols { removeSubscriber(id, from: symbol) }
        clientsOfUser[client.user.id]?.remove(id)
        if clientsOfUser[client.user.id]?.isEmpty == true { clientsOfUser[client.user.id] = nil }
        client.outbox.finish()
    }

    /// Returns the symbols newly watched, or nil when the client would watch more than
    /// `limit` (nothing changes then).
    func subscribe(_ id: Int, to symbols: [String], limit: Int) -> (all: [String], added: [String])? {
        guard let client = clients[id] else { return ([], []) }
        guard client.symbols.union(symbols).count <= limit else { return nil }
        let added = symbols.filter { !client.symbols.contains($0) }
        for symbol in added {
            clients[id]!.symbols.insert(symbol)
            subscribers[symbol, default: []].insert(id)
        }
        return (clients[id]!.symbols.sorted(), added)
    }

    func unsubscribe(_ id: Int, from symbols: [String]) -> [String] {
        guard clients[id] != nil else { return [] }
        for symbol in symbols where clients[id]!.symbols.remove(symbol) != nil {
            removeSubscriber(id, from: symbol)
        }
        return clients[id]!.symbols.sorted()
    }

    private func removeSubscriber(_ id: Int, from symbol: String) {
        subscribers[symbol]?.remove(id)
        if subscribers[symbol]?.isEmpty == true { subscribers[symbol] = nil }
    }

    /// Queues messages in order; a client whose queue is full is dropped and its
    /// connection closed, rather than buffered without bound.
    func send(_ texts: [String], to id: Int) {
        for text in texts {
            guard let client = clients[id] else { return }
            if case .dropped = client.outbox.yield(.text(text)) {
                logger.notice("dropped a slow stream client", metadata: ["user": "\(client.user.name)"])
                drop(id)
            }
        }
    }

    func send(_ text: String, to id: Int) { send([text], to: id) }

    /// Ends a stream with a close frame after what is already queued for it (answers the
    /// client has earned are not lost); a client whose queue is full is dropped instead.
    func end(_ id: Int, code: WebSocketErrorCode, reason: String) {
        guard let client = clients[id] else { return }
        if case .dropped = client.outbox.yield(.close(code, reason: reason)) { return drop(id) }
        unregister(id)
    }

    private func drop(_ id: Int) {
        let close = clients[id]?.close
        unregister(id)
        close?()
    }

    /// Reads and fans out one batch; true when more is waiting.
    private func poll() async throws -> Bool {
        guard let after = position else { return false }
        let checkTokens = !clients.isEmpty && ContinuousClock.now - lastTokenCheck >= Self.tokenCheckInterval
        if checkTokens { lastTokenCheck = ContinuousClock.now }
        let history = self.history
        let (batch, tokens) = try await blocking {
            (try history.streamBatch(after: after, limit: Self.batch), checkTokens ? try history.userTokens() : nil)
        }
        if let tokens {
            for (id, client) in clients where tokens[client.user.id] != client.user.tokenHash {
                logger.notice("closed a stream of a removed user", metadata: ["user": "\(client.user.name)"])
                end(id, code: Self.userRemoved, reason: "user removed")
            }
        }
        position = batch.position
        for quote in batch.quotes {
            if let newest = newestStreamed[quote.symbol], quote.observedAt <= newest { continue }
            newestStreamed[quote.symbol] = quote.observedAt
            guard let ids = subscribers[quote.symbol] else { continue }
            let text = StreamMessage.quote(quote)
            for id in ids { send(text, to: id) }
        }
        for (userID, notification) in batch.notifications {
            guard let ids = clientsOfUser[userID] else { continue }
            let text = StreamMessage.notification(notification)
            for id in ids { send(text, to: id) }
        }
        for change in batch.stateChanges {
            guard let ids = clientsOfUser[change.userID] else { continue }
            let text = StreamMessage.notificationState(change)
            for id in ids { send(text, to: id) }
        }
        return batch.more
    }

    /// At shutdown every stream ends normally: its handler returns and the connection is
    /// closed with 1000 (the service group's maximum bounds a client that never answers).
    private func closeAll() {
        for id in Array(clients.keys) { unregister(id) }
    }
}

/// What the hub queues for one stream: a message, or the close frame that ends it.
enum StreamOutgoing: Sendable {
    case text(String)
    case close(WebSocketErrorCode, reason: String)
}
