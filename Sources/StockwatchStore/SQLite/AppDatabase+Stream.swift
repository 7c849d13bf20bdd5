import Foundation
import GRDB
import StockwatchModel

/// One writer at a time (SQLite's lock) commits ids in the order it draws them, so a
/// stream reads by id: nothing can later commit below an id already read.
extension AppDatabase: StreamStore {
    public func streamStart() throws(StockwatchError) -> StreamPosition {
        try read { db in
            .rowIDs(quote: try Int64.fetchOne(db, sql: "SELECT COALESCE(max(id), 0) FROM quotes") ?? 0,
                    notification: try Int64.fetchOne(db, sql: "SELECT COALESCE(max(id), 0) FROM notifications") ?? 0,
                    stateChange: try Int64.fetchOne(db, sql: "SELECT COALESCE(max(id), 0) FROM notification_state_changes") ?? 0)
        }
    }

    public func streamBatch(after position: StreamPosition, limit: Int) throws(StockwatchError) -> StreamBatch {
        guard case .rowIDs(let afterQuote, let afterNotification, let afterStateChange) = position else { return StreamBatch(position: try streamStart()) }
        return try read { db in
            let quotes = try QuoteRecord.filter(Column("id") > afterQuote).order(Column("id")).limit(limit).fetchAll(db)
            let notifications = try NotificationRecord.filter(Column("id") > afterNotification).order(Column("id")).limit(limit).fetchAll(db)
            let changes = try Row.fetchAll(
                db, sql: "SELECT id, user_id, state, notification_ids FROM notification_state_changes WHERE id > ? ORDER BY id LIMIT ?",
                arguments: [afterStateChange, limit])
            var batch = StreamBatch(position: .rowIDs(
                quote: quotes.last?.id ?? afterQuote, notification: notifications.last?.id ?? afterNotification,
                stateChange: changes.last?["id"] ?? afterStateChange))
            batch.stateChanges = try changes.map { row in
                let text: String = row["notification_ids"]
                let state: NotificationState = row["state"]
                return NotificationStateChange(userID: row["user_id"], ids: try JSONDecoder().decode([Int64].self, from: Data(text.utf8)), state: state)
            }
            batch.quotes = quotes.map(QuoteJSON.init)
            if !notifications.isEmpty {
                batch.notifications = zip(notifications, try Self.json(notifications, in: db)).map { (userID: $0.userId, notification: $1) }
            }
            batch.more = quotes.count == limit || notifications.count == limit || changes.count == limit
            return batch
        }
    }

    public func watchStream(_ wake: @escaping @Sendable () -> Void) async throws(StockwatchError) -> (any StoreWatch)? { nil }
}
