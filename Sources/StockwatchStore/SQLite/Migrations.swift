import Foundation
import GRDB
import StockwatchModel

extension AppDatabase {
    /// Named, append-only migrations: never edit one that has shipped, add a new one.
    /// Times are INTEGER milliseconds since 1970 (UTC) so that range scans stay cheap.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-users-devices-alerts-quotes-notifications") { db in
            try db.execute(sql: """
                CREATE TABLE users (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
                    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE devices (
                    id INTEGER PRIMARY KEY,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    fcm_token TEXT NOT NULL UNIQUE CHECK (length(fcm_token) BETWEEN 1 AND 4096),
                    label TEXT CHECK (label IS NULL OR length(label) <= 200),
                    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
                    deactivated_reason TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE INDEX devices_user ON devices(user_id);
                CREATE TABLE alerts (
                    id INTEGER PRIMARY KEY,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    symbol TEXT NOT NULL CHECK (length(symbol) BETWEEN 1 AND 16 AND symbol = upper(symbol)),
                    kind TEXT NOT NULL CHECK (kind IN ('above', 'below', 'crosses_above', 'crosses_below', 'rise', 'fall')),
                    value REAL CHECK (value > 0 AND value < 1e15),
                    percent REAL CHECK (percent > 0 AND percent <= 1000),
                    window_seconds INTEGER CHECK (window_seconds > 0),
                    trigger TEXT NOT NULL CHECK (trigger IN ('once', 'rearm', 'every')),
                    cooldown_seconds INTEGER NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
                    rearm_margin_percent REAL NOT NULL DEFAULT 0 CHECK (rearm_margin_percent >= 0 AND rearm_margin_percent < 100),
                    channels TEXT NOT NULL CHECK (json_valid(channels) AND json_type(channels) = 'array' AND json_array_length(channels) >= 1),
                    state TEXT NOT NULL DEFAULT 'armed' CHECK (state IN ('armed', 'firing', 'fired', 'paused', 'expired')),
                    note TEXT CHECK (note IS NULL OR length(note) <= 1000),
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    last_fired_at INTEGER,
                    CHECK ((kind IN ('rise', 'fall')) = (percent IS NOT NULL AND window_seconds IS NOT NULL AND value IS NULL)),
                    CHECK ((kind IN ('rise', 'fall')) OR (value IS NOT NULL AND percent IS NULL AND window_seconds IS NULL)),
                    CHECK (kind <> 'fall' OR percent < 100),
                    CHECK (rearm_margin_percent = 0 OR trigger = 'rearm')
                );
                CREATE INDEX alerts_user ON alerts(user_id);
                CREATE INDEX alerts_symbol_state ON alerts(symbol, state);
                CREATE TABLE quotes (
                    id INTEGER PRIMARY KEY,
                    symbol TEXT NOT NULL CHECK (length(symbol) BETWEEN 1 AND 16),
                    price REAL NOT NULL CHECK (price > 0 AND price < 1e15),
                    provider TEXT NOT NULL,
                    observed_at INTEGER NOT NULL,
                    fetched_at INTEGER NOT NULL,
                    UNIQUE (symbol, observed_at)
                );
                CREATE TABLE notifications (
                    id INTEGER PRIMARY KEY,
                    alert_id INTEGER REFERENCES alerts(id) ON DELETE SET NULL,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    quote_id INTEGER REFERENCES quotes(id) ON DELETE SET NULL,
                    symbol TEXT NOT NULL,
                    price REAL NOT NULL,
                    observed_at INTEGER NOT NULL,
                    message TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    UNIQUE (alert_id, quote_id)
                );
                CREATE INDEX notifications_user_created ON notifications(user_id, created_at);
                CREATE INDEX notifications_symbol ON notifications(symbol);
                CREATE TABLE deliveries (
                    id INTEGER PRIMARY KEY,
                    notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
                    channel TEXT NOT NULL,
                    target TEXT,
                    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'retry', 'failed', 'dead')),
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    next_attempt_at INTEGER NOT NULL,
                    lease_until INTEGER,
                    last_error TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    UNIQUE (notification_id, channel, target)
                );
                CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
                """)
        }
        migrator.registerMigration("v2-provider-budgets") { db in
            // One row per provider: budgets must outlive the per-minute cron processes.
            try db.execute(sql: """
                CREATE TABLE provider_state (
                    provider TEXT PRIMARY KEY CHECK (provider IN ('fixer', 'currencylayer', 'finnhub', 'stooq')),
                    last_success_at INTEGER,
                    last_error_at INTEGER,
                    last_error TEXT,
                    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
                    blocked_until INTEGER,
                    blocked_reason TEXT
                );
                CREATE INDEX quotes_observed ON quotes(observed_at);
                """)
        }
        migrator.registerMigration("v3-evaluation-watermarks") { db in
            // Evaluate's position is kept per symbol (the observed time of the last quote
            // judged for all its alerts), so a tick writes one row per symbol, not one per
            // alert. A new or resumed alert has its own start until its first evaluate:
            // the newest quote of its symbol when it was added, 0 when there was none.
            try db.execute(sql: """
                CREATE TABLE evaluation_progress (
                    symbol TEXT PRIMARY KEY,
                    observed_at INTEGER NOT NULL
                );
                ALTER TABLE alerts ADD COLUMN start_at INTEGER CHECK (start_at IS NULL OR start_at >= 0);
                UPDATE alerts SET start_at = (SELECT COALESCE(max(observed_at), 0) FROM quotes WHERE quotes.symbol = alerts.symbol)
                    WHERE state IN ('armed', 'firing', 'paused');
                -- evaluate seeks, per symbol with new prices, only the alerts whose level
                -- the price range reached (see EvaluateService), instead of scanning all.
                CREATE INDEX alerts_starting ON alerts(symbol, start_at) WHERE start_at IS NOT NULL;
                CREATE INDEX alerts_expiring ON alerts(expires_at) WHERE expires_at IS NOT NULL;
                CREATE INDEX alerts_rising ON alerts(symbol, state, value) WHERE kind IN ('above', 'crosses_above');
                CREATE INDEX alerts_falling ON alerts(symbol, state, value) WHERE kind IN ('below', 'crosses_below');
                CREATE INDEX alerts_changes ON alerts(symbol, kind, window_seconds, state, percent) WHERE window_seconds IS NOT NULL;
                """)
        }
        migrator.registerMigration("v4-delivery-attempts-access-tokens") { db in
            // Every attempt's outcome is kept (history and status show them); the OAuth
            // access token of each FCM service account is cached so that per-minute ticks
            // do not authenticate every run. Leased claims are found by their own index.
            try db.execute(sql: """
                CREATE TABLE delivery_attempts (
                    id INTEGER PRIMARY KEY,
                    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
                    attempt INTEGER NOT NULL CHECK (attempt >= 1),
                    finished_at INTEGER NOT NULL,
                    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed', 'dead')),
                    error TEXT,
                    UNIQUE (delivery_id, attempt)
                );
                CREATE TABLE access_tokens (
                    account TEXT PRIMARY KEY,
                    token TEXT NOT NULL CHECK (length(token) > 0),
                    expires_at INTEGER NOT NULL
                );
                CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE status = 'sending';
                """)
        }
        migrator.registerMigration("v5-notification-ids-never-reused") { db in
            // A notification id is what receivers deduplicate on (the webhook-id header,
            // FCM's notification_id, the stream): without AUTOINCREMENT, deleting the newest
            // rows (a removed user's) would hand their ids to new notifications. The table
            // is rebuilt as SQLite requires; foreign keys are off during migrations.
            try db.execute(sql: """
                CREATE TABLE notifications_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    alert_id INTEGER REFERENCES alerts(id) ON DELETE SET NULL,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    quote_id INTEGER REFERENCES quotes(id) ON DELETE SET NULL,
                    symbol TEXT NOT NULL,
                    price REAL NOT NULL,
                    observed_at INTEGER NOT NULL,
                    message TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    UNIQUE (alert_id, quote_id)
                );
                INSERT INTO notifications_new (id, alert_id, user_id, quote_id, symbol, price, observed_at, message, created_at)
                    SELECT id, alert_id, user_id, quote_id, symbol, price, observed_at, message, created_at FROM notifications;
                DROP TABLE notifications;
                ALTER TABLE notifications_new RENAME TO notifications;
                CREATE INDEX notifications_user_created ON notifications(user_id, created_at);
                CREATE INDEX notifications_symbol ON notifications(symbol);
                """)
        }
        migrator.registerMigration("v6-ids-never-reused-deliveries-name-their-device") { db in
            // Ids of users, devices and alerts leave the database (the API, the CLI, a
            // delivery's target) and were reused after a delete: a removed phone's id went
            // to another user's phone, which then received the first user's retries. The
            // tables are rebuilt with AUTOINCREMENT, keeping their ids (SQLite's way: new
            // table, copy, drop, rename; GRDB runs migrations with foreign keys off and
            // checks them before the commit). A delivery now names its device by a foreign
            // key; the text target stays as the label history shows.
            try db.execute(sql: """
                CREATE TABLE users_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
                    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
                    created_at INTEGER NOT NULL
                );
                INSERT INTO users_new (id, name, token_hash, created_at) SELECT id, name, token_hash, created_at FROM users;
                DROP TABLE users;
                ALTER TABLE users_new RENAME TO users;

                CREATE TABLE devices_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    fcm_token TEXT NOT NULL UNIQUE CHECK (length(fcm_token) BETWEEN 1 AND 4096),
                    label TEXT CHECK (label IS NULL OR length(label) <= 200),
                    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
                    deactivated_reason TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                INSERT INTO devices_new (id, user_id, fcm_token, label, active, deactivated_reason, created_at, updated_at)
                    SELECT id, user_id, fcm_token, label, active, deactivated_reason, created_at, updated_at FROM devices;
                DROP TABLE devices;
                ALTER TABLE devices_new RENAME TO devices;
                CREATE INDEX devices_user ON devices(user_id);

                CREATE TABLE alerts_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    symbol TEXT NOT NULL CHECK (length(symbol) BETWEEN 1 AND 16 AND symbol = upper(symbol)),
                    kind TEXT NOT NULL CHECK (kind IN ('above', 'below', 'crosses_above', 'crosses_below', 'rise', 'fall')),
                    value REAL CHECK (value > 0 AND value < 1e15),
                    percent REAL CHECK (percent > 0 AND percent <= 1000),
                    window_seconds INTEGER CHECK (window_seconds > 0),
                    trigger TEXT NOT NULL CHECK (trigger IN ('once', 'rearm', 'every')),
                    cooldown_seconds INTEGER NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
                    rearm_margin_percent REAL NOT NULL DEFAULT 0 CHECK (rearm_margin_percent >= 0 AND rearm_margin_percent < 100),
                    channels TEXT NOT NULL CHECK (json_valid(channels) AND json_type(channels) = 'array' AND json_array_length(channels) >= 1),
                    state TEXT NOT NULL DEFAULT 'armed' CHECK (state IN ('armed', 'firing', 'fired', 'paused', 'expired')),
                    note TEXT CHECK (note IS NULL OR length(note) <= 1000),
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    last_fired_at INTEGER,
                    start_at INTEGER CHECK (start_at IS NULL OR start_at >= 0),
                    CHECK ((kind IN ('rise', 'fall')) = (percent IS NOT NULL AND window_seconds IS NOT NULL AND value IS NULL)),
                    CHECK ((kind IN ('rise', 'fall')) OR (value IS NOT NULL AND percent IS NULL AND window_seconds IS NULL)),
                    CHECK (kind <> 'fall' OR percent < 100),
                    CHECK (rearm_margin_percent = 0 OR trigger = 'rearm')
                );
                INSERT INTO alerts_new (id, user_id, symbol, kind, value, percent, window_seconds, trigger, cooldown_seconds,
                        rearm_margin_percent, channels, state, note, created_at, expires_at, last_fired_at, start_at)
                    SELECT id, user_id, symbol, kind, value, percent, window_seconds, trigger, cooldown_seconds,
                        rearm_margin_percent, channels, state, note, created_at, expires_at, last_fired_at, start_at FROM alerts;
                DROP TABLE alerts;
                ALTER TABLE alerts_new RENAME TO alerts;
                CREATE INDEX alerts_user ON alerts(user_id);
                CREATE INDEX alerts_symbol_state ON alerts(symbol, state);
                CREATE INDEX alerts_starting ON alerts(symbol, start_at) WHERE start_at IS NOT NULL;
                CREATE INDEX alerts_expiring ON alerts(expires_at) WHERE expires_at IS NOT NULL;
                CREATE INDEX alerts_rising ON alerts(symbol, state, value) WHERE kind IN ('above', 'crosses_above');
                CREATE INDEX alerts_falling ON alerts(symbol, state, value) WHERE kind IN ('below', 'crosses_below');
                CREATE INDEX alerts_changes ON alerts(symbol, kind, window_seconds, state, percent) WHERE window_seconds IS NOT NULL;

                -- Quotes' ids are the stream's read position and deliveries' ids are shown by
                -- the API and referred to by delivery_attempts: neither may be reused either.
                CREATE TABLE quotes_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    symbol TEXT NOT NULL CHECK (length(symbol) BETWEEN 1 AND 16),
                    price REAL NOT NULL CHECK (price > 0 AND price < 1e15),
                    provider TEXT NOT NULL,
                    observed_at INTEGER NOT NULL,
                    fetched_at INTEGER NOT NULL,
                    UNIQUE (symbol, observed_at)
                );
                INSERT INTO quotes_new (id, symbol, price, provider, observed_at, fetched_at)
                    SELECT id, symbol, price, provider, observed_at, fetched_at FROM quotes;
                DROP TABLE quotes;
                ALTER TABLE quotes_new RENAME TO quotes;
                CREATE INDEX quotes_observed ON quotes(observed_at);

                CREATE TABLE deliveries_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
                    channel TEXT NOT NULL,
                    target TEXT,
                    device_id INTEGER REFERENCES devices(id) ON DELETE SET NULL,
                    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'retry', 'failed', 'dead')),
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    next_attempt_at INTEGER NOT NULL,
                    lease_until INTEGER,
                    last_error TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    UNIQUE (notification_id, channel, target)
                );
                -- A device named by an old text target counts only while it is still the
                -- notification's user's: an id already reused names someone else's phone.
                INSERT INTO deliveries_new (id, notification_id, channel, target, device_id, status, attempts, next_attempt_at,
                        lease_until, last_error, created_at, updated_at)
                    SELECT d.id, d.notification_id, d.channel, d.target,
                        (SELECT dv.id FROM devices dv JOIN notifications n ON n.id = d.notification_id
                            WHERE d.target LIKE 'device:%' AND dv.id = CAST(substr(d.target, 8) AS INTEGER) AND dv.user_id = n.user_id),
                        d.status, d.attempts, d.next_attempt_at, d.lease_until, d.last_error, d.created_at, d.updated_at
                    FROM deliveries d;
                DROP TABLE deliveries;
                ALTER TABLE deliveries_new RENAME TO deliveries;
                CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
                CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE status = 'sending';
                CREATE INDEX deliveries_device ON deliveries(device_id) WHERE device_id IS NOT NULL;

                -- Device ids removed before this migration may be above every remaining one;
                -- the deliveries still name them, so the counter starts past those too.
                UPDATE sqlite_sequence SET seq = max(seq, (
                        SELECT coalesce(max(CAST(substr(target, 8) AS INTEGER)), 0) FROM deliveries WHERE target LIKE 'device:%'))
                    WHERE name = 'devices';
                INSERT INTO sqlite_sequence (name, seq)
                    SELECT 'devices', max(CAST(substr(target, 8) AS INTEGER)) FROM deliveries WHERE target LIKE 'device:%'
                    HAVING count(*) > 0 AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'devices');
                """)
            // A waiting delivery whose device is gone, or now another user's (an id reused
            // before this migration), must never be sent: it ends failed, kept in history.
            let now = Date().milliseconds
            let reason = DeliveryReason.deviceGone
            try db.execute(sql: """
                INSERT INTO delivery_attempts (delivery_id, attempt, finished_at, outcome, error)
                    SELECT id, attempts + (status <> 'sending'), ?, 'failed', ? FROM deliveries
                    WHERE target LIKE 'device:%' AND device_id IS NULL AND status IN ('pending', 'retry', 'sending')
                    ON CONFLICT DO NOTHING;
                UPDATE deliveries SET status = 'failed', attempts = attempts + (status <> 'sending'), lease_until = NULL, last_error = ?, updated_at = ?
                    WHERE target LIKE 'device:%' AND device_id IS NULL AND status IN ('pending', 'retry', 'sending');
                """, arguments: [now, reason, reason, now])
        }
        migrator.registerMigration("v7-symbol-fetch-backoff") { db in
            // A symbol that no provider has data for (a typo, a delisted ticker, or many
            // made up to crowd others out) backs off, so it stops spending request budgets.
            try db.execute(sql: """
                CREATE TABLE symbol_fetch_state (
                    symbol TEXT PRIMARY KEY CHECK (length(symbol) BETWEEN 1 AND 16),
                    no_data_count INTEGER NOT NULL CHECK (no_data_count >= 1),
                    retry_at INTEGER NOT NULL,
                    last_reason TEXT
                );
                """)
        }
        migrator.registerMigration("v8-notification-state") { db in
            // The app's read and dismissed, on the row (a notification has one state), and a
            // day of changes in commit order for `serve` to tell the user's other phones.
            try db.execute(sql: """
                ALTER TABLE notifications ADD COLUMN state TEXT NOT NULL DEFAULT 'unread' CHECK (state IN ('unread', 'read', 'dismissed'));
                ALTER TABLE notifications ADD COLUMN state_changed_at INTEGER;
                ALTER TABLE notifications ADD COLUMN state_device_id INTEGER REFERENCES devices(id) ON DELETE SET NULL;
                CREATE INDEX notifications_state_device ON notifications(state_device_id) WHERE state_device_id IS NOT NULL;
                CREATE TABLE notification_state_changes (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    state TEXT NOT NULL CHECK (state IN ('read', 'dismissed')),
                    notification_ids TEXT NOT NULL CHECK (json_valid(notification_ids) AND json_type(notification_ids) = 'array'),
                    changed_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v9-alert-snooze") { db in
            try db.execute(sql: "ALTER TABLE alerts ADD COLUMN snoozed_until INTEGER CHECK (snoozed_until IS NULL OR snoozed_until >= 0)")
        }
        migrator.registerMigration("v10-user-time-zone-quiet-hours") { db in
            // The shape only: a zone name is checked against the system's list when set.
            try db.execute(sql: """
                ALTER TABLE users ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64);
                ALTER TABLE users ADD COLUMN quiet_hours TEXT CHECK (quiet_hours IS NULL OR quiet_hours GLOB '[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]');
                """)
        }
        migrator.registerMigration("v11-alert-schedule") { db in
            try db.execute(sql: "ALTER TABLE alerts ADD COLUMN schedule TEXT CHECK (schedule IS NULL OR length(schedule) BETWEEN 1 AND 64)")
        }
        migrator.registerMigration("v12-trailing-alerts") { db in try db.execute(sql: trailingAlertsMigration) }
        migrator.registerMigration("v13-daily-history") { db in try db.execute(sql: dailyHistoryMigration) }
        migrator.registerMigration("v14-check-sets-as-comparisons") { db in try checkSetsAsComparisons(db) }
        migrator.registerMigration("v15-start-rounds") { db in try db.execute(sql: startRoundsMigration) }
        migrator.registerMigration("v16-symbol-index-without-state") { db in
            // Every alert that fires has its state rewritten: with the state in this index,
            // each update also moved its entry (98,978 firings among 1,000,000 alerts:
            // 1.55-1.65 s with it, 1.14-1.22 s without). Evaluate counts the active alerts
            // from the seeks' partial indexes instead, which hold symbol and state.
            try db.execute(sql: "DROP INDEX alerts_symbol_state; CREATE INDEX alerts_symbol ON alerts(symbol)")
        }
        migrator.registerMigration("v17-foreign-keys-indexed") { db in
            // A foreign key's action on delete finds the referencing rows by their column.
            // Deleting a quote sets its notifications' quote_id to NULL, which without an
            // index scanned every notification once per quote: once the retention is
            // reached, each fetch prunes about one quote per symbol, and took a full scan of
            // the notifications for each (docs/benchmarks.md). Only rows whose quote is
            // kept are indexed: pruned ones are NULL. A removed user's read and dismissed
            // changes were found the same way.
            try db.execute(sql: """
                CREATE INDEX notifications_quote ON notifications(quote_id) WHERE quote_id IS NOT NULL;
                CREATE INDEX notification_state_changes_user ON notification_state_changes(user_id);
                """)
        }
        migrator.registerMigration("v18-last-firing-from-notifications") { db in try db.execute(sql: lastFiringMigration) }
        migrator.registerMigration("v19-level-states-derived") { db in try db.execute(sql: levelStatesMigration) }
        migrator.registerMigration("v20-notifications-keyed-by-time") { db in try notificationsKeyedByTime(db) }
        migrator.registerMigration("v21-notifications-without-symbol-index") { db in try db.execute(sql: notificationsWithoutSymbolIndexMigration) }
        migrator.registerMigration("v22-deliveries-due-waiting-only") { db in try db.execute(sql: deliveriesDueMigration) }
        migrator.registerMigration("v23-once-ends-aside") { db in try db.execute(sql: onceEndsMigration) }
        migrator.registerMigration("v24-evaluation-progress-without-rowid") { db in try db.execute(sql: progressWithoutRowidMigration) }
        migrator.registerMigration("v25-firing-aside") { db in try db.execute(sql: firingAsideMigration) }
        migrator.registerMigration("v26-trailing-index-with-percent") { db in try db.execute(sql: trailingIndexWithPercentMigration) }
        return migrator
    }
}
