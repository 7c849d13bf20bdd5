import Foundation
import StockwatchModel

/// Everything stockwatch keeps, by domain. The services reach their data only through
/// these protocols; each implementation (today `AppDatabase`, on SQLite) holds every
/// statement it runs and makes each method one transaction. `StoreContractTests` checks
/// an implementation through the protocols alone.
public protocol DataStore: AccountStore, AlertStore, QuoteStore, EvaluationStore, OutboxStore, ProviderBudgetStore, AccessTokenStore, HealthStore {
    /// Where the data lives (a file path), for messages, `status` and the tick's lock.
    var location: String { get }
}

/// Every table of the schema, the same on both backends, for `db status`.
let schemaTables = [
    "users", "devices", "alerts", "quotes", "notifications", "deliveries", "delivery_attempts",
    "provider_state", "evaluation_progress", "access_tokens", "symbol_fetch_state",
]

/// Opens (creating and migrating when needed) the SQLite store at `location`, a file path.
public func openDataStore(at location: String) throws(StockwatchError) -> any DataStore {
    try AppDatabase(path: location)
}

/// The one place that picks an implementation. PostgreSQL serves `db migrate` and
/// `db status` so far (PostgresDatabase); the storage protocols on it come next.
public func openDataStore(at location: DatabaseLocation) throws(StockwatchError) -> any DataStore {
    switch location {
    case let .sqlite(path):
        return try AppDatabase(path: path)
    case let .postgres(server):
        throw .config(file: server.source, line: nil, key: nil,
                      reason: "\(server.description): this version runs only `db migrate` and `db status` on PostgreSQL; the other commands still need an SQLite file (docs/postgres.md)")
    }
}
