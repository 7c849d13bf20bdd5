extension AppDatabase {
    /// v13: the rules judged against daily history (issue 18): change since the previous
    /// close, and new highs and lows over a window of days. Their kinds change the CHECKs
    /// on `alerts`: rebuilt as in v12, ids kept. A new high's window is in
    /// `window_seconds`, so `alerts_changes` (symbol, kind, window...) is its seek too;
    /// since-close rules have their own.
    ///
    /// `daily_prices`: one row per symbol and market day (the day on the exchange's clock,
    /// `Symbol.marketTimeZone`), from Stooq's daily download, a file, or derived from the
    /// stored quotes. `previous_closes`: the previous trading day's close a provider
    /// reports beside a quote (Finnhub's `pc`), for the market day of that quote.
    ///
    /// Its CHECKs name a set of values as comparisons (`anyOf`), not `IN (...)`: for an IN
    /// list of more than two constants SQLite builds an ephemeral table each time a CHECK
    /// is tested, about 4 µs a list, eight lists a row: most of a 100,000-alert import.
    static let dailyHistoryMigration = """
        CREATE TABLE alerts_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            symbol TEXT NOT NULL CHECK (length(symbol) BETWEEN 1 AND 16 AND symbol = upper(symbol)),
            kind TEXT NOT NULL CHECK \(anyOf("kind", ["above", "below", "crosses_above", "crosses_below", "rise", "fall", "trailing_fall", "trailing_rise",
                "rise_since_close", "fall_since_close", "new_high", "new_low"])),
            value REAL CHECK (value > 0 AND value < 1e15),
            percent REAL CHECK (percent > 0 AND percent <= 1000),
            window_seconds INTEGER CHECK (window_seconds > 0),
            trigger TEXT NOT NULL CHECK \(anyOf("trigger", ["once", "rearm", "every"])),
            cooldown_seconds INTEGER NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
            rearm_margin_percent REAL NOT NULL DEFAULT 0 CHECK (rearm_margin_percent >= 0 AND rearm_margin_percent < 100),
            channels TEXT NOT NULL CHECK (json_valid(channels) AND json_type(channels) = 'array' AND json_array_length(channels) >= 1),
            state TEXT NOT NULL DEFAULT 'armed' CHECK \(anyOf("state", ["armed", "firing", "fired", "paused", "expired"])),
            note TEXT CHECK (note IS NULL OR length(note) <= 1000),
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            last_fired_at INTEGER,
            start_at INTEGER CHECK (start_at IS NULL OR start_at >= 0),
            snoozed_until INTEGER CHECK (snoozed_until IS NULL OR snoozed_until >= 0),
            schedule TEXT CHECK (schedule IS NULL OR length(schedule) BETWEEN 1 AND 64),
            CHECK (\(anyOf("kind", ["rise", "fall", "new_high", "new_low"])) = (window_seconds IS NOT NULL)),
            CHECK (\(anyOf("kind", ["rise", "fall", "trailing_fall", "trailing_rise", "rise_since_close", "fall_since_close"])) = (percent IS NOT NULL AND value IS NULL)),
            CHECK (\(anyOf("kind", ["rise", "fall", "trailing_fall", "trailing_rise", "rise_since_close", "fall_since_close", "new_high", "new_low"])) OR value IS NOT NULL),
            CHECK (kind NOT IN ('new_high', 'new_low') OR (value IS NULL AND percent IS NULL AND window_seconds % 86400 = 0)),
            CHECK (NOT \(anyOf("kind", ["fall", "trailing_fall", "fall_since_close"])) OR percent < 100),
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
        CREATE INDEX alerts_since_close ON alerts(symbol, kind, state, percent) WHERE kind IN ('rise_since_close', 'fall_since_close');
        CREATE TABLE daily_prices (
            symbol TEXT NOT NULL CHECK (length(symbol) BETWEEN 1 AND 16 AND symbol = upper(symbol)),
            day TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
            open REAL CHECK (open IS NULL OR (open > 0 AND open < 1e15)),
            high REAL CHECK (high IS NULL OR (high > 0 AND high < 1e15)),
            low REAL CHECK (low IS NULL OR (low > 0 AND low < 1e15)),
            close REAL NOT NULL CHECK (close > 0 AND close < 1e15),
            volume REAL CHECK (volume IS NULL OR volume >= 0),
            source TEXT NOT NULL CHECK (source IN ('stooq', 'file', 'quotes')),
            CHECK (low IS NULL OR high IS NULL OR low <= high),
            PRIMARY KEY (symbol, day)
        ) WITHOUT ROWID;
        CREATE INDEX daily_prices_day ON daily_prices(day);
        CREATE TABLE previous_closes (
            symbol TEXT PRIMARY KEY CHECK (length(symbol) BETWEEN 1 AND 16 AND symbol = upper(symbol)),
            day TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
            close REAL NOT NULL CHECK (close > 0 AND close < 1e15)
        ) WITHOUT ROWID;
        """

    /// `(column = 'a' OR column = 'b' ...)`: what `column IN ('a', 'b', ...)` means, tested
    /// without an ephemeral table. The values are this file's literals, never input.
    static func anyOf(_ column: String, _ values: [String]) -> String {
        "(" + values.map { "\(column) = '\($0)'" }.joined(separator: " OR ") + ")"
    }
}
