import Foundation
import Logging
import ServiceLifecycle

/// The one reader behind every WebSocket client: it polls the database for quotes and
/// notifications that other processes committed, and fans each out to the clients that
/// want it. Polling by row id with short read transactions never holds a snapshot open,
/// so WAL checkpoints of the cron processes are not held back.
actor StreamHub: Service {
    /// Messages a client may have queued before it counts as too slow and is dropped.
    static let clientBuffer = 1024
    /// Rows read per poll; a burst larger than this is sent over the next polls.
    static let batch = 5000

    struct Client {
        let user: AuthenticatedUser
        let outbox: AsyncStream<String>.Continuation
        var symbols: Set<String> = []
    }

    private let history: HistoryService
    private let maxConnectionsPerUser: Int
    private let pollInterval: Duration
    private let logger: Logger
    private var clients: [Int: Client] = [:]
    private var subscribers: [String: Set<Int>] = [:]
    private var nextClientID = 1
    private var lastQuoteID: Int64?
    private var lastNotificationID: Int64?

    init(history: HistoryService, maxConnectionsPerUser: Int, pollInterval: Duration, logger: Logger = Logger(label: "stockwatch.serve")) {
        self.history = history
        self.maxConnectionsPerUser = maxConnectionsPerUser
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// Polls until graceful shutdown, then ends every client's stream so that their
    /// connections close and the server can stop.
    func run() async throws {
        let history = self.history
        let start = try await blocking { try history.newestIDs() }
        lastNotificationID = start.notification
        lastQuoteID = start.quote
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.poll()
                } catch {
                    self.logger.warning("stream poll failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.pollInterval)
            }
        }
        closeAll()
    }

    /// A new client, or nil when the user already has the most connections allowed.
    func register(_ user: AuthenticatedUser) -> (id: Int, outbox: AsyncStream<String>)? {
        guard clients.values.count(where: { $0.user.id == user.id }) < maxConnectionsPerUser else { return nil }
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(Self.clientBuffer))
        let id = nextClientID
        nextClientID += 1
        clients[id] = Client(user: user, outbox: continuation)
        return (id, stream)
    }

    func unregister(_ id: Int) {
        guard let client = clients.removeValue(forKey: id) else { return }
        for symbol in client.symbols { subscribers[symbol]?.remove(id) }
        client.outbox.finish()
    }

    /// Returns the client's symbols after the change, or nil when they would be more
    /// than `limit` (nothing changes then).
    func subscribe(_ id: Int, to symbols: [String], limit: Int) -> [String]? {
        guard let client = clients[id] else { return [] }
        guard client.symbols.union(symbols).count <= limit else { return nil }
        for symbol in symbols where clients[id]!.symbols.insert(symbol).inserted {
            subscribers[symbol, default: []].insert(id)
        }
        return clients[id]!.symbols.sorted()
    }

    func unsubscribe(_ id: Int, from symbols: [String]) -> [String] {
        guard clients[id] != nil else { return [] }
        for symbol in symbols where clients[id]!.symbols.remove(symbol) != nil {
            subscribers[symbol]?.remove(id)
        }
        return clients[id]!.symbols.sorted()
    }

    /// Queues one message; a client whose queue is full is dropped (its stream ends
    /// and its connection closes) rather than buffered without bound.
    func send(_ text: String, to id: Int) {
        guard let client = clients[id] else { return }
        if case .dropped = client.outbox.yield(text) {
            logger.notice("dropped a slow stream client", metadata: ["user": "\(client.user.name)"])
            unregister(id)
        }
    }

    private func poll() async throws {
        guard let afterQuote = lastQuoteID, let afterNotification = lastNotificationID else { return }
        let history = self.history
        let (quotes, notifications) = try await blocking {
            (try history.quotes(afterID: afterQuote, limit: Self.batch), try history.notifications(afterID: afterNotification, limit: Self.batch))
        }
        if let last = quotes.last { lastQuoteID = last.id }
        if let last = notifications.last { lastNotificationID = last.id }
        for (_, quote) in quotes {
            guard let ids = subscribers[quote.symbol], !ids.isEmpty else { continue }
            let text = StreamMessage.quote(quote)
            for id in ids { send(text, to: id) }
        }
        for notification in notifications {
            let ids = clients.filter { $0.value.user.name == notification.user }.map(\.key)
            guard !ids.isEmpty else { continue }
            let text = StreamMessage.notification(notification)
            for id in ids { send(text, to: id) }
        }
    }

    private func closeAll() {
        for id in Array(clients.keys) { unregister(id) }
    }
}
