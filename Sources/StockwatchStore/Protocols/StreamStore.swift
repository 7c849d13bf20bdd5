import Foundation
import StockwatchModel

/// Where a stream reader has read up to. Each backend makes and reads its own kind.
public enum StreamPosition: Sendable, Hashable {
    /// SQLite: the highest quote, notification and state change ids read. One writer at
    /// a time commits ids in the order it draws them, so nothing can commit below them later.
    case rowIDs(quote: Int64, notification: Int64, stateChange: Int64)
    /// PostgreSQL: the last entry of the stream log read. Entries are numbered under a
    /// lock held until commit, so their numbers follow commit order, which ids do not.
    case commit(Int64)
}

/// What was committed after a position, and the position after it.
public struct StreamBatch: Sendable {
    public var position: StreamPosition
    public var quotes: [QuoteJSON] = []
    public var notifications: [(userID: Int64, notification: NotificationJSON)] = []
    /// Notifications the app read or dismissed, for the user's other connections.
    public var stateChanges: [NotificationStateChange] = []
    /// Not everything fitted into this batch: read again at once.
    public var more = false

    public init(position: StreamPosition) { self.position = position }
}

/// What `serve` streams: quotes, notifications and their state changes in the order they were committed, by
/// whichever process.
public protocol StreamStore: Sendable {
    /// Where a stream that starts now starts: after everything committed so far.
    func streamStart() throws(StockwatchError) -> StreamPosition
    /// Quotes and notifications committed after `position`, oldest first; about `limit`
    /// rows at most (one writer's commit is never split).
    func streamBatch(after position: StreamPosition, limit: Int) throws(StockwatchError) -> StreamBatch
    /// Calls `wake` whenever another process may have committed quotes or notifications,
    /// until stopped; once more after a lost connection is listening again. Nil when the
    /// backend has no wake-ups (SQLite: serve polls).
    func watchStream(_ wake: @escaping @Sendable () -> Void) async throws(StockwatchError) -> (any StoreWatch)?
}
