import Foundation
import GRDB

extension AppDatabase {
    /// v20: a notification names the time of the quote it fired on, not the quote. The
    /// row already holds the symbol, price and time; quotes are unique by symbol and time,
    /// and an alert has one symbol, so `UNIQUE (alert_id, observed_at)` keeps a second
    /// notification of one quote out as `UNIQUE (alert_id, quote_id)` did, and still does
    /// once the quote is pruned (the NULL pruning left in `quote_id` let one through). Its
    /// index is also the last-firing seek's (v18's `notifications_alert_observed`). Each
    /// notification written loses a foreign-key check and two index entries; pruning a
    /// quote no longer touches the notifications (docs/benchmarks.md, twenty-second
    /// session). A column with a foreign key cannot be dropped in place: the table is
    /// rebuilt (foreign keys are off during migrations), keeping its ids and its id
    /// counter, so that no id is handed out twice.
    static func notificationsKeyedByTime(_ db: Database) throws {
        let counter = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'notifications'")
        try db.execute(sql: """
            CREATE TABLE notifications_new (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                alert_id INTEGER REFERENCES alerts(id) ON DELETE SET NULL,
                user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                symbol TEXT NOT NULL,
                price REAL NOT NULL,
                observed_at INTEGER NOT NULL,
                message TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                state TEXT NOT NULL DEFAULT 'unread' CHECK (\(anyOf("state", ["unread", "read", "dismissed"]))),
                state_changed_at INTEGER,
                state_device_id INTEGER REFERENCES devices(id) ON DELETE SET NULL
            );
            INSERT INTO notifications_new (id, alert_id, user_id, symbol, price, observed_at, message, created_at, state, state_changed_at, state_device_id)
                SELECT id, alert_id, user_id, symbol, price, observed_at, message, created_at, state, state_changed_at, state_device_id
                FROM notifications ORDER BY id;
            DROP TABLE notifications;
            ALTER TABLE notifications_new RENAME TO notifications;
            CREATE UNIQUE INDEX notifications_alert_observed ON notifications(alert_id, observed_at);
            CREATE INDEX notifications_user_created ON notifications(user_id, created_at);
            CREATE INDEX notifications_symbol ON notifications(symbol);
            CREATE INDEX notifications_state_device ON notifications(state_device_id) WHERE state_device_id IS NOT NULL;
            """)
        // The copy set the counter to the highest id kept; the newest ids may have been
        // deleted (a removed user's), and must not come back.
        if let counter {
            try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = 'notifications'")
            try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('notifications', ?)", arguments: [counter])
        }
    }

    /// v21: keyed by symbol, each tick's new notifications landed all over this index (a
    /// fifth of the pages a steady tick wrote at 50,000 symbols), and it grew with the
    /// history kept. `history --symbol` finds a symbol's notifications through its alerts
    /// instead (`notifications(_:)`): an alert keeps its symbol, and a removed alert's
    /// notifications have none (docs/benchmarks.md).
    static let notificationsWithoutSymbolIndexMigration = "DROP INDEX notifications_symbol"
}
