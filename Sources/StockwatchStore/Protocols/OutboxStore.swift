import Foundation
import StockwatchModel

/// A send's outcome as notify decided it, to be written if the claim still holds.
public struct DeliveryOutcome: Sendable {
    public var job: DeliveryJob
    public var status: DeliveryStatus
    public var nextAttemptAt: Date
    public var error: String?
    /// FCM said the token is dead: the device is deactivated.
    public var deactivateDevice: Bool
    public init(job: DeliveryJob, status: DeliveryStatus, nextAttemptAt: Date, error: String?, deactivateDevice: Bool) {
        self.job = job
        self.status = status
        self.nextAttemptAt = nextAttemptAt
        self.error = error
        self.deactivateDevice = deactivateDevice
    }
}

/// Which notifications to list, newest first.
public struct NotificationQuery: Sendable {
    /// Canonical symbol text.
    public var symbol: String?
    public var alertID: Int64?
    public var since: Date?
    /// Only this user's notifications (the API's scoping).
    public var userID: Int64?
    /// Only notifications with a smaller id, ordered by id, newest first (the API's cursor).
    public var beforeID: Int64?
    public var state: NotificationState?
    public var limit: Int
    public init(symbol: String? = nil, alertID: Int64? = nil, since: Date? = nil, userID: Int64? = nil, beforeID: Int64? = nil, state: NotificationState? = nil, limit: Int = 100) {
        self.state = state
        self.symbol = symbol
        self.alertID = alertID
        self.since = since
        self.userID = userID
        self.beforeID = beforeID
        self.limit = limit
    }
}

/// The outbox: notifications and their deliveries, a work queue shared by any number of
/// notify processes.
///
/// A claim moves due rows to `sending` with a lease and bumps their attempt count, so two
/// processes never hold the same row. A process that dies leaves its rows `sending`; once
/// the lease ends any run claims them again (at least once, never lost). Outcomes are
/// written only while the row is still that claim's (same status and attempt), so a run
/// that overran its lease cannot overwrite the outcome of the run that took over.
public protocol OutboxStore: Sendable {
    /// Channels with deliveries due at `now` (or whose lease ended).
    func channelsWithDueDeliveries(now: Date) throws(StockwatchError) -> Set<String>
    /// When the next delivery falls due (its next attempt, or the end of its lease), nil
    /// when none waits: how long `notify --follow` may sleep.
    func nextDeliveryDue() throws(StockwatchError) -> Date?
    /// Calls `wake` whenever another process may have committed new deliveries, from the
    /// moment this returns until the watch is stopped; after a lost connection, once more
    /// when it listens again (what was committed meanwhile is in the tables). Nil when
    /// the backend has no wake-ups (SQLite: a follower polls).
    func watchDeliveries(_ wake: @escaping @Sendable () -> Void) async throws(StockwatchError) -> (any StoreWatch)?
    /// Claims up to `limit` deliveries of `channels` that were due at `cutoff` or whose
    /// lease ended, leased until `leaseUntil`. A delivery of a `fanOut` channel without a
    /// target (written once per notification) becomes one claimed delivery per active
    /// device of the notification's user (the row itself is the first device's, keeping
    /// its id), or fails when the user has none (returned in `failed`). A job's device is found only while it belongs to the
    /// notification's user.
    func claimDeliveries(channels: Set<String>, fanOut: Set<String>, limit: Int, cutoff: Date, leaseUntil: Date, now: Date) async throws(StockwatchError) -> (jobs: [DeliveryJob], failed: [DeliveryJSON])
    /// Extends the lease of those of these claims (delivery id: attempt) that still hold
    /// to `leaseUntil`, and returns them: a removed device or user, a token moved to
    /// another user, or a lease taken over ends a claim. notify renews what it has not
    /// started yet, so that no claim's lease ends before its send does.
    func renewClaims(_ claims: [Int64: Int], leaseUntil: Date, now: Date) async throws(StockwatchError) -> Set<Int64>
    /// Writes outcomes in one transaction and returns the new state of each delivery whose
    /// claim still held; the others are dropped (the run that took over decides).
    func recordOutcomes(_ outcomes: [DeliveryOutcome], now: Date) async throws(StockwatchError) -> [DeliveryJSON]
    /// Gives claimed deliveries back unsent, without counting an attempt (a job claimed
    /// after a hold has `heldForQuietHours`), due again at
    /// `until` with `reason` as their last error (quiet hours hold pushes). A claim that
    /// was lost is skipped. Returns how many were held.
    func holdClaims(_ claims: [Int64: Int], until: Date, reason: String, now: Date) async throws(StockwatchError) -> Int
    /// With their deliveries, newest first (by creation, or by id with `beforeID`).
    func notifications(_ query: NotificationQuery) throws(StockwatchError) -> [NotificationJSON]
}

/// A running watch for wake-ups; stopping it closes its connection.
public protocol StoreWatch: Sendable {
    func stop()
}

/// What `status` reads about the deliveries.
public protocol HealthStore: Sendable {
    /// Counts by status, deliveries due before `overdueBefore` (or leased until before
    /// it), and deliveries that gave up since `deadSince`.
    func deliveryHealth(overdueBefore: Date, deadSince: Date) throws(StockwatchError) -> StatusReport.Deliveries
    /// The newest failed attempts, newest first.
    func recentFailedAttempts(limit: Int) throws(StockwatchError) -> [StatusReport.AttemptError]
    /// The newest observed time of each of these symbols that has a quote.
    func newestObservedAt(symbols: [String]) throws(StockwatchError) -> [String: Date]
    /// How much space the data takes: the file and its WAL, or the database's size.
    func storageBytes() throws(StockwatchError) -> Int64
}
