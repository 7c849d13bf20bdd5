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

/// Opens (creating and migrating when needed) the store at `location`: today an SQLite
/// file path. The one place that picks an implementation.
public func openDataStore(at location: String) throws(StockwatchError) -> any DataStore {
    try AppDatabase(path: location)
}
