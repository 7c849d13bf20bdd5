extension AppDatabase {
    /// v12: trailing rules (issue 18). Their kinds change the CHECKs on `alerts`, which
    /// SQLite cannot alter: the table is rebuilt as in v6 (new table, copy, drop, rename,
    /// its indexes again; GRDB runs a migration with foreign keys off and checks them
    /// before the commit), ids kept. `alerts_trailing` is the seek evaluate makes for them.
    /// A rule's running peak or low lives in `alert_trails`, a narrow row beside the
    /// alert: it may move on every tick, and 15,000 moves then fill some 75 pages
    /// instead of dirtying most of the alerts table (docs/benchmarks.md).
    static let trailingAlertsMigration = """
        CREATE TABLE alerts_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            symbol TEXT NOT NULL CHECK (length(symbol) BETWEEN 1 AND 16 AND symbol = upper(symbol)),
            kind TEXT NOT NULL CHECK (kind IN ('above', 'below', 'crosses_above', 'crosses_below', 'rise', 'fall', 'trailing_fall', 'trailing_rise')),
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
            snoozed_until INTEGER CHECK (snoozed_until IS NULL OR snoozed_until >= 0),
            schedule TEXT CHECK (schedule IS NULL OR length(schedule) BETWEEN 1 AND 64),
            CHECK ((kind IN ('rise', 'fall')) = (window_seconds IS NOT NULL)),
            CHECK ((kind IN ('rise', 'fall', 'trailing_fall', 'trailing_rise')) = (percent IS NOT NULL AND value IS NULL)),
            CHECK ((kind IN ('rise', 'fall', 'trailing_fall', 'trailing_rise')) OR value IS NOT NULL),
            CHECK (kind NOT IN ('fall', 'trailing_fall') OR percent < 100),
            CHECK (rearm_margin_percent = 0 OR trigger = 'rearm')
        );
        INSERT INTO alerts_new (id, user_id, symbol, kind, value, percent, window_seconds, trigger, cooldown_seconds,
                rearm_margin_percent, channels, state, note, created_at, expires_at, last_fired_at, start_at, snoozed_until, schedule)
            SELECT id, user_id, symbol, kind, value, percent, window_seconds, trigger, cooldown_seconds,
                rearm_margin_percent, channels, state, note, created_at, expires_at, last_fired_at, start_at, snoozed_until, schedule FROM alerts;
        DROP TABLE alerts;
        ALTER TABLE alerts_new RENAME TO alerts;
        CREATE INDEX alerts_user ON alerts(user_id);
        CREATE INDEX alerts_symbol_state ON alerts(symbol, state);
        CREATE INDEX alerts_starting ON alerts(symbol, start_at) WHERE start_at IS NOT NULL;
        CREATE INDEX alerts_expiring ON alerts(expires_at) WHERE expires_at IS NOT NULL;
        CREATE INDEX alerts_rising ON alerts(symbol, state, value) WHERE kind IN ('above', 'crosses_above');
        CREATE INDEX alerts_falling ON alerts(symbol, state, value) WHERE kind IN ('below', 'crosses_below');
        CREATE INDEX alerts_changes ON alerts(symbol, kind, window_seconds, state, percent) WHERE window_seconds IS NOT NULL;
        CREATE INDEX alerts_trailing ON alerts(symbol, kind, state) WHERE kind IN ('trailing_fall', 'trailing_rise');
        CREATE TABLE alert_trails (
            alert_id INTEGER PRIMARY KEY REFERENCES alerts(id) ON DELETE CASCADE,
            trailing_from REAL NOT NULL CHECK (trailing_from > 0 AND trailing_from < 1e15)
        );
        """
}
