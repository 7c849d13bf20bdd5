import Foundation
import StockwatchModel

/// Everything stockwatch keeps, by domain. The services reach their data only through
/// these protocols; each implementation (`AppDatabase` on SQLite, `PostgresStore` on
/// PostgreSQL) holds every statement it runs and makes each method one transaction. `StoreContractTests` checks
/// an implementation through the protocols alone.
public protocol DataStore: AccountStore, AlertStore, QuoteStore, EvaluationStore, OutboxStore, ProviderBudgetStore, AccessTokenStore, HealthStore, StreamStore, NotificationStateStore, DailyHistoryStore {
    /// Where the data lives (a file path, or a URL without its password), for messages and `status`.
    var location: String { get }
    /// An exclusive lock held until released or until the process dies: on SQLite a
    /// file beside the database, on PostgreSQL an advisory lock. Held by another process:
    /// `temporary`, naming `holder`.
    func runLock(name: String, holder: String) throws(StockwatchError) -> any RunLease
}

extension DataStore {
    /// A provider's claim is the run lock named after it, on both backends.
    public func claimProvider(_ provider: String) throws(StockwatchError) -> (any RunLease)? {
        do {
            return try runLock(name: "fetch-\(provider)", holder: "fetch")
        } catch {
            if case .temporary = error { return nil }
            throw error
        }
    }
}

/// A held `DataStore.runLock`.
public protocol RunLease: Sendable {
    func release()
}

/// Every table of the schema, the same on both backends, for `db status`.
let schemaTables = [
    "users", "devices", "alerts", "alert_trails", "quotes", "notifications", "deliveries", "delivery_attempts",
    "provider_state", "evaluation_progress", "access_tokens", "symbol_fetch_state", "daily_prices", "previous_closes",
]

/// Opens (creating and migrating when needed) the SQLite store at `location`, a file path.
public func openDataStore(at location: String) throws(StockwatchError) -> any DataStore {
    try AppDatabase(path: location)
}

/// The one place that picks an implementation. On PostgreSQL, opening checks that the
/// schema is current (ordinary commands never migrate it: `db migrate` does). `concurrent`:
/// for a process serving many callers at once (`serve`); a command uses one session.
/// `readOnly`: the command only reads (see `AppDatabase.init`; PostgreSQL ignores it).
public func openDataStore(at location: DatabaseLocation, concurrent: Bool = false, readOnly: Bool = false) throws(StockwatchError) -> any DataStore {
    switch location {
    case let .sqlite(path):
        return try AppDatabase(path: path, readOnly: readOnly)
    case let .postgres(server):
        return try PostgresStore(server, connections: concurrent ? .pool(maximum: 8) : .session)
    }
}
