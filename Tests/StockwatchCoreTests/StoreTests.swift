import Foundation
import GRDB
import GRDBSQLite
import Testing
@testable import StockwatchCore
@testable import StockwatchModel
@testable import StockwatchStore
@testable import StockwatchServer

@Suite struct StoreTests {
    @Test func newDatabaseIsPrivateWALWithMigrations() throws {
        let store = try TemporaryStore()
        let attributes = try FileManager.default.attributesOfItem(atPath: store.database.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let (mode, foreignKeys, migrations) = try store.database.read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA foreign_keys"),
             try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"))
        }
        #expect(mode == "wal")
        #expect(foreignKeys == 1)
        #expect(migrations == ["v1-users-devices-alerts-quotes-notifications", "v2-provider-budgets", "v3-evaluation-watermarks", "v4-delivery-attempts-access-tokens", "v5-notification-ids-never-reused",
            "v6-ids-never-reused-deliveries-name-their-device", "v7-symbol-fetch-backoff", "v8-notification-state", "v9-alert-snooze", "v10-user-time-zone-quiet-hours", "v11-alert-schedule", "v12-trailing-alerts", "v13-daily-history", "v14-check-sets-as-comparisons", "v15-start-rounds", "v16-symbol-index-without-state", "v17-foreign-keys-indexed", "v18-last-firing-from-notifications", "v19-level-states-derived", "v20-notifications-keyed-by-time", "v21-notifications-without-symbol-index", "v22-deliveries-due-waiting-only", "v23-once-ends-aside", "v24-evaluation-progress-without-rowid", "v25-firing-aside", "v26-trailing-index-with-percent"])
        // Reopening runs nothing twice.
        _ = try AppDatabase(path: store.database.path)
    }

    /// A file this binary creates has 8 KiB pages (evaluate's page reads); one made with
    /// SQLite's 4 KiB default keeps them, opens, migrates and takes writes as before.
    @Test func newDatabasesHaveEightKiBPagesAndOlderFilesKeepTheirs() throws {
        let store = try TemporaryStore()
        #expect(try store.database.read { try Int.fetchOne($0, sql: "PRAGMA page_size") } == AppDatabase.pageSize)
        #expect(AppDatabase.pageSize == 8192)

        let older = store.folder + "/older.db"
        try DatabaseQueue(path: older).write { db in
            try db.execute(sql: "PRAGMA page_size = 4096")
            try db.execute(sql: "CREATE TABLE before_stockwatch (x INTEGER)")
        }
        let reopened = try AppDatabase(path: older)
        let (pageSize, mode) = try reopened.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA page_size"), try String.fetchOne(db, sql: "PRAGMA journal_mode"))
        }
        #expect(pageSize == 4096)
        #expect(mode == "wal")
        try reopened.write { db in
            try db.execute(sql: "INSERT INTO users (name, token_hash, created_at) VALUES ('ann', ?, 0)", arguments: [String(repeating: "0", count: 64)])
        }
        #expect(try reopened.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM users") } == 1)
    }

    /// Text bound through the C API arrives whole: empty, short (stored inline by Swift),
    /// long, with NUL and multi-byte characters, and from a Foundation string.
    @Test func rawStatementsBindEveryKindOfStringWhole() throws {
        let store = try TemporaryStore()
        let texts = ["", "S1", "BRK.B", String(repeating: "long text ", count: 40), "ünï €→ 📈", "a\u{0}b",
                     NSString(string: "from Foundation").appending(" too")]
        try store.database.read { db in
            let statement = try RawStatement(db, "SELECT ?1, length(CAST(?1 AS BLOB))")
            for text in texts {
                statement.bind(1, text)
                #expect(try statement.step())
                #expect(statement.string(0) == text)
                #expect(statement.int64(1) == Int64(text.utf8.count))
                statement.reset()
            }
        }
    }

    /// Row batches reuse one prepared statement for every full batch, binding it again
    /// without clearing it: each row arrives with its own values, a NULL after a value in
    /// the same place included, and the last, shorter batch too.
    @Test func rowBatchesWriteEachRowsOwnValues() throws {
        let store = try TemporaryStore()
        let count = 250
        let notes = (0..<count).map { $0 % 3 == 0 ? nil : "row \($0)" }
        let prices = (0..<count).map { $0 % 2 == 0 ? Double($0) / 2 : nil }
        let (returned, rows) = try store.database.write { db in
            try db.execute(sql: "CREATE TEMP TABLE batched (n INTEGER NOT NULL, note TEXT, price REAL)")
            var returned: [Int64] = []
            try RowBatches(head: "INSERT INTO temp.batched (n, note, price)", row: "(?, ?, ?)", parameters: 3, tail: "RETURNING n", batch: 100)
                .run(db, count: count) { statement, offset, index in
                    statement.bind(offset + 1, Int64(index))
                    statement.bind(offset + 2, notes[index])
                    statement.bind(offset + 3, prices[index])
                } read: { returned.append($0.int64(0)) }
            let rows = try Row.fetchAll(db, sql: "SELECT n, note, price FROM temp.batched ORDER BY n")
            return (returned, rows.map { ($0["n"] as Int64, $0["note"] as String?, $0["price"] as Double?) })
        }
        #expect(returned.sorted() == (0..<Int64(count)).map { $0 })
        #expect(rows.map(\.0) == (0..<Int64(count)).map { $0 })
        #expect(rows.map(\.1) == notes)
        #expect(rows.map(\.2) == prices)
    }

    /// An evaluate's working state is freed on another thread, all of it, and its lookups
    /// (which hold the connection) before it goes, on the connection's own thread.
    @Test func anEvaluationsStateIsFreedElsewhereAndItsLookupsHere() throws {
        final class Tracker: @unchecked Sendable {
            let freed = DispatchSemaphore(value: 0)
            let owner: Thread
            var freedOnOwner: Bool?
            init(owner: Thread) { self.owner = owner }
            final class Token {
                let tracker: Tracker
                init(_ tracker: Tracker) { self.tracker = tracker }
                deinit {
                    tracker.freedOnOwner = Thread.current == tracker.owner
                    tracker.freed.signal()
                }
            }
        }
        let lookups = Tracker(owner: .current)
        var evaluation = Evaluation(now: 0, staleBefore: 0, prefilter: true)
        evaluation.lookupReference = { [token = Tracker.Token(lookups)] _, _ in withExtendedLifetime(token) { nil } }
        evaluation.releaseInBackground()
        #expect(lookups.freed.wait(timeout: .now()) == .success)
        #expect(lookups.freedOnOwner == true)

        let state = Tracker(owner: .current)
        var token = Tracker.Token(state)
        HeldForRelease(taking: &token, leaving: Tracker.Token(Tracker(owner: .current))).releaseOnAnotherThread()
        #expect(state.freed.wait(timeout: .now() + 30) == .success)
        #expect(state.freedOnOwner == false)
    }

    /// The seeks' runs of symbols are key ranges in SQLite's order: every key falls in
    /// exactly one run, even where Swift's `<` orders text otherwise (canonically
    /// equivalent forms, which it ranks as one).
    @Test func theSeeksRunsCoverEveryKeyInSQLitesOrder() throws {
        let keys = ["F", "E\u{301}X", "\u{C9}", "AAPL", "E", "MSFT", "BRK.B", "Z", "E\u{301}"]
        #expect(keys.sorted() != Evaluation.sortedInKeyOrder(keys) { $0 }, "the keys must tell the two orders apart")
        let queue = try DatabaseQueue()
        let sorted = try queue.write { db in
            try db.execute(sql: "CREATE TABLE k (symbol TEXT PRIMARY KEY) WITHOUT ROWID")
            for key in keys { try db.execute(sql: "INSERT INTO k VALUES (?)", arguments: [key]) }
            return try String.fetchAll(db, sql: "SELECT symbol FROM k ORDER BY symbol")
        }
        #expect(Evaluation.sortedInKeyOrder(keys) { $0 } == sorted)
        // ASCII keys sort by `<`, the same order.
        let ascii = keys.filter { $0.utf8.allSatisfy { $0 < 0x80 } }
        #expect(Evaluation.sortedInKeyOrder(ascii) { $0 } == sorted.filter(ascii.contains))
        for size in 1...4 {
            let runs = Evaluation.$seekRun.withValue(size) { Evaluation.runs(of: Evaluation.sortedInKeyOrder(keys) { $0 }) }
            let covered = try queue.read { db in
                try runs.map { try String.fetchAll(db, sql: "SELECT symbol FROM k WHERE symbol BETWEEN ? AND ?", arguments: [$0.first, $0.last]) }
            }
            #expect(covered.flatMap { $0 } == sorted, "runs of \(size)")
        }
    }

    /// Symbols with a watermark keep their place from the table's key order, and symbols
    /// new to it are merged in by their text: the batch and the watermarks come out in
    /// SQLite's order either way, so the seeks' runs still cover every key.
    @Test func symbolsKeepTheirKeyOrderFromTheWatermarks() throws {
        // Symbols are ASCII (Symbol.parse); text beyond it is merged by its bytes all the
        // same. No two keys canonically equivalent: they would be one key of `symbols`.
        let keys = ["F", "E\u{301}X", "\u{C9}", "AAPL", "E", "MSFT", "BRK.B", "Z", "A", "ZZ", "\u{C9}A"]
        let queue = try DatabaseQueue()
        let sorted = try queue.write { db in
            try db.execute(sql: "CREATE TABLE k (symbol TEXT PRIMARY KEY) WITHOUT ROWID")
            for key in keys { try db.execute(sql: "INSERT INTO k VALUES (?)", arguments: [key]) }
            return try String.fetchAll(db, sql: "SELECT symbol FROM k ORDER BY symbol")
        }
        // Every split of the keys into ones with a watermark (ranked in SQLite's order) and
        // new ones, each in a shuffled batch.
        var generator = SystemRandomNumberGenerator()
        for watermarked in [Set(keys), [], Set(keys.filter { $0.utf8.count == 1 }), Set(keys.filter { !$0.utf8.allSatisfy { $0 < 0x80 } }), Set(["A", "ZZ"])] {
            var evaluation = Evaluation(now: 0, staleBefore: 0, prefilter: true)
            for (rank, key) in sorted.filter(watermarked.contains).enumerated() { evaluation.addProgress(key, watermark: 0, judged: nil, keyRank: rank) }
            evaluation.keyRanks = watermarked.count
            for key in keys where !watermarked.contains(key) { evaluation.addStart(key, 0) }
            #expect(evaluation.inKeyOrder(keys.shuffled(using: &generator)) { $0 } == sorted, "watermarked: \(watermarked.sorted())")
            // A symbol twice keeps both, side by side.
            #expect(evaluation.inKeyOrder((keys + ["F"]).shuffled(using: &generator)) { $0 } == Evaluation.sortedInKeyOrder(keys + ["F"]) { $0 })
        }
    }

    /// The notifications' insert returns its rows in the order of each batch, less the
    /// pairs already notified; each firing gets its own row's id in any order.
    @Test func eachFiringGetsItsOwnNotificationIdInAnyOrder() {
        let firings = (0..<10).map { i in
            Evaluation.Firing(alert: .init(id: Int64(100 + i % 5), userId: 1, symbol: "S", channels: "[]"), price: 1, time: Int64(i / 5), message: "")
        }
        func ids(_ batches: [(bound: Int, rows: [Int])]) -> [Int64?] {
            var found = Evaluation.FiringIDs(count: firings.count)
            for (bound, rows) in batches {
                found.bound = bound
                for index in rows {
                    found.returned(Int64(1000 + index), alert: firings[index].alert.id, time: firings[index].time, of: firings)
                }
            }
            found.resolve(firings)
            return found.ids
        }
        let all = (0..<10).map { Optional(Int64(1000 + $0)) }
        #expect(ids([(5, [0, 1, 2, 3, 4]), (10, [5, 6, 7, 8, 9])]) == all)
        #expect(ids([(5, [4, 3, 2, 1, 0]), (10, [9, 5, 8, 6, 7])]) == all)
        var skipped = all
        for index in [0, 3, 9] { skipped[index] = nil }
        #expect(ids([(5, [1, 2, 4]), (10, [5, 6, 7, 8])]) == skipped)
        #expect(ids([(5, [4, 2, 1]), (10, [8, 7, 6, 5])]) == skipped)
    }

    /// v13 and v14: no CHECK of a table evaluate or notify writes tests an IN list of more
    /// than two constants (an ephemeral table per row), and the sets still hold.
    @Test func checksNameTheirSetsAsComparisonsAndStillRefuse() throws {
        let store = try TemporaryStore()
        let tables = try store.database.read { db in
            try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'table'").map { ($0[0] as String, $0[1] as String) }
        }
        let longList = try NSRegularExpression(pattern: #"CHECK \([^;]*IN \('[^']*', '[^']*', '"#)
        for (name, sql) in tables where ["alerts", "notifications", "deliveries", "delivery_attempts", "provider_state", "daily_prices"].contains(name) {
            #expect(longList.firstMatch(in: sql, range: NSRange(sql.startIndex..., in: sql)) == nil, "\(name): \(sql)")
        }
        try store.database.write { db in
            try db.execute(sql: "INSERT INTO users (id, name, token_hash, created_at) VALUES (1, 'u', '\(String(repeating: "a", count: 64))', 0)")
            try db.execute(sql: "INSERT INTO notifications (id, user_id, symbol, price, observed_at, message, created_at) VALUES (1, 1, 'AAPL', 1, 0, 'm', 0)")
            try db.execute(sql: "INSERT INTO deliveries (notification_id, channel, next_attempt_at, created_at, updated_at) VALUES (1, 'stdout', 0, 0, 0)")
            try db.execute(sql: "UPDATE deliveries SET status = 'dead'")
        }
        for bad in ["UPDATE deliveries SET status = 'gone'", "UPDATE notifications SET state = 'seen'",
                    "INSERT INTO delivery_attempts (delivery_id, attempt, finished_at, outcome) VALUES (1, 1, 0, 'lost')"] {
            #expect(throws: (any Error).self, "\(bad)") { try store.database.write { db in try db.execute(sql: bad) } }
        }
        #expect(try store.database.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") } == "ok")
    }

    @Test func notificationIdsAreNeverReusedAndV5KeepsExistingRows() throws {
        let folder = NSTemporaryDirectory() + "stockwatch-core-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/old.db"
        // A database as v4 left it, with two notifications and their deliveries.
        let old = try DatabaseQueue(path: path)
        try AppDatabase.migrator.migrate(old, upTo: "v4-delivery-attempts-access-tokens")
        try old.write { db in
            try db.execute(sql: "INSERT INTO users (id, name, token_hash, created_at) VALUES (1, 'u', '\(String(repeating: "a", count: 64))', 0), (2, 'v', '\(String(repeating: "b", count: 64))', 0)")
            for (id, user) in [(1, 1), (2, 2)] {
                try db.execute(sql: "INSERT INTO notifications (id, user_id, symbol, price, observed_at, message, created_at) VALUES (?, ?, 'AAPL', 1, 0, 'm', 0)", arguments: [id, user])
                try db.execute(sql: "INSERT INTO deliveries (notification_id, channel, next_attempt_at, created_at, updated_at) VALUES (?, 'stdout', 0, 0, 0)", arguments: [id])
            }
        }
        try old.close()

        let database = try AppDatabase(path: path)
        let kept = try database.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM notifications") ?? 0, try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries") ?? 0)
        }
        #expect(kept == (2, 2))
        // Removing the user of the newest notification must not free its id.
        let newID = try database.write { db -> Int64 in
            try db.execute(sql: "DELETE FROM users WHERE id = 2")
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries") == 1)  // the cascade still reaches deliveries
            try db.execute(sql: "INSERT INTO notifications (user_id, symbol, price, observed_at, message, created_at) VALUES (1, 'AAPL', 1, 0, 'm', 0)")
            return db.lastInsertedRowID
        }
        #expect(newID == 3)
    }

    /// v20 rebuilds the notifications without `quote_id`: it keeps every row, its state and
    /// deliveries, the foreign keys and the id counter past a deleted newest id, and the
    /// new key refuses a second notification of one alert at one time even once the
    /// quote is gone (the old key let it through with the NULL pruning left).
    @Test func v20KeepsTheNotificationsAndKeysThemByTime() throws {
        let store = try TemporaryStore(migratedFrom: "v19-level-states-derived") { db in
            try db.execute(sql: """
                INSERT INTO users (id, name, token_hash, created_at) VALUES (1, 'u', '\(String(repeating: "a", count: 64))', 0), (2, 'v', '\(String(repeating: "b", count: 64))', 0);
                INSERT INTO quotes (id, symbol, price, provider, observed_at, fetched_at) VALUES (1, 'AAPL', 2, 'finnhub', 1000, 1000);
                INSERT INTO alerts (id, user_id, symbol, kind, value, trigger, channels, created_at) VALUES (1, 1, 'AAPL', 'above', 1, 'once', '["stdout"]', 0);
                INSERT INTO notifications (id, alert_id, user_id, quote_id, symbol, price, observed_at, message, created_at, state)
                    VALUES (1, 1, 1, 1, 'AAPL', 2, 1000, 'm', 0, 'read'), (2, NULL, 2, NULL, 'AAPL', 2, 1000, 'm', 0, 'unread'),
                           (3, NULL, 2, NULL, 'AAPL', 2, 2000, 'm', 0, 'unread');
                INSERT INTO deliveries (notification_id, channel, next_attempt_at, created_at, updated_at) VALUES (1, 'stdout', 0, 0, 0), (2, 'stdout', 0, 0, 0);
                DELETE FROM notifications WHERE id = 3;
                """)
        }
        try store.database.write { db in
            #expect(try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('notifications')").contains("quote_id") == false)
            #expect(try Int64.fetchAll(db, sql: "SELECT id FROM notifications ORDER BY id") == [1, 2])
            #expect(try String.fetchOne(db, sql: "SELECT state FROM notifications WHERE id = 1") == "read")
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries") == 2)
            #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty)
            #expect(try String.fetchOne(db, sql: "PRAGMA integrity_check") == "ok")
            // The quote pruned: the same alert and time is still refused.
            try db.execute(sql: "DELETE FROM quotes")
            #expect(throws: DatabaseError.self) {
                try db.execute(sql: "INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at) VALUES (1, 1, 'AAPL', 2, 1000, 'm', 0)")
            }
            // Id 3 was deleted before the migration: it is not handed out again.
            try db.execute(sql: "INSERT INTO notifications (user_id, symbol, price, observed_at, message, created_at) VALUES (1, 'AAPL', 2, 3000, 'm', 0)")
            #expect(db.lastInsertedRowID == 4)
            // The foreign keys still act: a removed user's notification and its delivery go.
            try db.execute(sql: "DELETE FROM users WHERE id = 2")
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries") == 1)
        }
    }

    /// Migrations sort in temporary files (an index over millions of rows sorted in
    /// memory held hundreds of megabytes); the writer keeps its temporary tables in memory
    /// afterwards, as every connection does (2 = MEMORY).
    @Test func theWriterKeepsTemporaryTablesInMemoryAfterMigrating() throws {
        let store = try TemporaryStore(migratedFrom: "v19-level-states-derived")
        #expect(try store.database.write { try Int.fetchOne($0, sql: "PRAGMA temp_store") } == 2)
    }

    @Test func schemaRejectsInvalidRows() throws {
        let store = try TemporaryStore()
        let invalid = [
            "INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at) VALUES ('AAPL', 0, 'x', 1, 1)",
            "INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at) VALUES ('AAPL', -1, 'x', 1, 1)",
            "INSERT INTO alerts (user_id, symbol, kind, value, trigger, channels, created_at) VALUES (999, 'AAPL', 'above', 1, 'rearm', '[\"stdout\"]', 0)",
            "INSERT INTO users (name, token_hash, created_at) VALUES ('', '\(String(repeating: "a", count: 64))', 0)",
        ]
        for sql in invalid {
            #expect(throws: StockwatchError.self, "\(sql)") { try store.database.write { db in try db.execute(sql: sql) } }
        }
        try store.database.write { db in
            try db.execute(sql: "INSERT INTO users (name, token_hash, created_at) VALUES ('u', '\(String(repeating: "a", count: 64))', 0)")
        }
        let alertRows = [
            "('AAPL', 'above', NULL, 5, 60, 'rearm', '[\"stdout\"]')",  // level condition with percent
            "('AAPL', 'rise', 1, NULL, NULL, 'rearm', '[\"stdout\"]')",  // change condition without percent
            "('AAPL', 'above', 1, NULL, NULL, 'often', '[\"stdout\"]')",  // unknown trigger
            "('AAPL', 'above', 1, NULL, NULL, 'rearm', '[]')",  // no channel
            "('aapl', 'above', 1, NULL, NULL, 'rearm', '[\"stdout\"]')",  // lower-case symbol
        ]
        for values in alertRows {
            #expect(throws: StockwatchError.self, "\(values)") {
                try store.database.write { db in
                    try db.execute(sql: "INSERT INTO alerts (symbol, kind, value, percent, window_seconds, trigger, channels, user_id, created_at) VALUES \(values.dropLast()), 1, 0)")
                }
            }
        }
    }

    /// A foreign key's action on delete (SET NULL, CASCADE) finds the referencing rows by
    /// their column: without an index leading with it, every deleted parent row scanned
    /// the whole child table (v17: pruning quotes scanned the notifications per quote).
    @Test func everyForeignKeyLeadsAnIndex() throws {
        let store = try TemporaryStore()
        let unindexed = try store.database.read { db in
            var unindexed: [String] = []
            for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") {
                // The primary key leads the table itself (a rowid alias or WITHOUT ROWID).
                var leading = Set(try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?) WHERE pk = 1", arguments: [table]))
                for index in try String.fetchAll(db, sql: "SELECT name FROM pragma_index_list(?)", arguments: [table]) {
                    if let first = try String.fetchOne(db, sql: "SELECT name FROM pragma_index_info(?) WHERE seqno = 0", arguments: [index]) { leading.insert(first) }
                }
                for column in try String.fetchAll(db, sql: "SELECT \"from\" FROM pragma_foreign_key_list(?)", arguments: [table]) where !leading.contains(column) {
                    unindexed.append("\(table).\(column)")
                }
            }
            return unindexed
        }
        #expect(unindexed == [])
    }

    @Test func concurrentWritersQueueInsteadOfFailing() async throws {
        let store = try TemporaryStore()
        let path = store.database.path
        // Separate connections, as separate processes would have.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    let database = try AppDatabase(path: path)
                    let service = AlertService(database: database, config: Config())
                    for index in 0..<25 {
                        var input = AlertInput(symbol: "AAPL")
                        input.above = "\(worker * 100 + index + 1)"
                        _ = try service.add(input)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.database.read { try AlertRecord.fetchCount($0) } == 100)
        #expect(try store.database.read { try UserRecord.fetchCount($0) } == 1)
    }

    /// AlertRecord reads its columns directly (not through Codable): every column must
    /// come back as it was written, set or NULL.
    @Test func alertRecordReadsBackWhatWasWritten() throws {
        let store = try TemporaryStore()
        let user = try store.database.write { db in
            try db.execute(sql: "INSERT INTO users (name, token_hash, created_at) VALUES ('u', '\(String(repeating: "a", count: 64))', 0)")
            return db.lastInsertedRowID
        }
        let ms = { (value: Int64) in Date(milliseconds: value) }
        let full = AlertRecord(
            userId: user, symbol: "EUR/USD", kind: .rise, value: nil, percent: 2.5, windowSeconds: 3600, trigger: .rearm,
            cooldownSeconds: 900, rearmMarginPercent: 0.5, channels: ["phone", "ops-hook"], state: .firing, note: "n",
            createdAt: ms(1_764_000_000_123), expiresAt: ms(1_800_000_000_456), lastFiredAt: ms(1_764_000_100_789), startAt: 42)
        let bare = AlertRecord(
            userId: user, symbol: "AAPL", kind: .above, value: 200.25, percent: nil, windowSeconds: nil, trigger: .once,
            cooldownSeconds: 0, rearmMarginPercent: 0, channels: ["stdout"], state: .armed, note: nil,
            createdAt: ms(1_764_000_000_000), expiresAt: nil, lastFiredAt: nil, startAt: nil)
        for record in [full, bare] {
            let written = try store.database.write { db -> AlertRecord in
                var copy = record
                try copy.insert(db)
                return copy
            }
            let read = try store.database.read { db in try AlertRecord.fetchOne(db, key: written.id) }
            #expect(String(describing: read) == String(describing: Optional(written)))
        }
    }

    /// An alert's last firing is the newer of its stored value (one written before v18)
    /// and its newest notification; evaluate writes only the latter.
    @Test func theLastFiringIsTheNewerOfTheStoredOneAndTheNotifications() throws {
        let store = try TemporaryStore()
        let read = { (id: Int64) in try store.database.read { db in try AlertRecord.fetchOne(db, key: id)?.lastFiredAt?.milliseconds } }
        let (stored, bare) = try store.database.write { db in
            try db.execute(sql: "INSERT INTO users (id, name, token_hash, created_at) VALUES (1, 'u', '\(String(repeating: "a", count: 64))', 0)")
            for (id, fired) in [(1, "5000"), (2, "NULL")] {
                try db.execute(sql: """
                    INSERT INTO alerts (id, user_id, symbol, kind, value, trigger, channels, state, created_at, last_fired_at)
                    VALUES (\(id), 1, 'AAPL', 'above', 1, 'every', '["stdout"]', 'armed', 0, \(fired))
                    """)
            }
            return (Int64(1), Int64(2))
        }
        #expect(try read(stored) == 5000)
        #expect(try read(bare) == nil)
        func notify(_ alert: Int64, at observed: Int64) throws {
            try store.database.write { db in
                try db.execute(sql: "INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at) VALUES (?, 1, 'AAPL', 2, ?, 'm', 0)",
                               arguments: [alert, observed])
            }
        }
        try notify(stored, at: 4000)
        try notify(bare, at: 4000)
        try notify(bare, at: 3000)
        #expect(try read(stored) == 5000)
        #expect(try read(bare) == 4000)
        try notify(stored, at: 6000)
        #expect(try read(stored) == 6000)
        let plan = try store.database.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT \(AlertRecord.lastFiredAt(of: "alerts")) FROM alerts").map { $0[3] as String }
        }
        #expect(plan.contains { $0.contains("notifications_alert_observed") }, "\(plan)")
    }

    /// A full disk and a read-only file system, on a small tmpfs (mounting one needs root;
    /// the test is skipped, and says so, without it): each a one-line error with its code.
    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs, which needs root"))
    func fullDiskAndReadOnlyFileSystemAreClearErrors() throws {
        let mount = NSTemporaryDirectory() + "stockwatch-fs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mount) }
        // 4 MB: a new database's migrations write 2 MB of WAL in 8 KiB pages.
        try #require(run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mount]), "mount -t tmpfs failed")
        defer { _ = run("/bin/umount", ["-l", mount]) }
        let path = mount + "/stockwatch.db"
        _ = try UserService(database: AppDatabase(path: path)).add(name: "bob")
        // Full: fill what is left, with SQLite's -wal and -shm gone (every process closed).
        FileManager.default.createFile(atPath: mount + "/filler", contents: nil)
        let filler = try #require(FileHandle(forWritingAtPath: mount + "/filler"))
        while (try? filler.write(contentsOf: Data(count: 65536))) != nil {}
        while (try? filler.write(contentsOf: Data(count: 512))) != nil {}
        try? filler.close()
        #expect(throws: StockwatchError.temporary("database \(path): disk full; nothing was written")) {
            _ = try UserService(database: AppDatabase(path: path)).add(name: "carol")
        }
        try FileManager.default.removeItem(atPath: mount + "/filler")
        #expect(try AppDatabase(path: path).read { try UserRecord.fetchCount($0) } == 1)

        #expect(run("/bin/mount", ["-o", "remount,ro", mount]))
        var caught: StockwatchError?
        do { _ = try AppDatabase(path: path).read { try UserRecord.fetchCount($0) } } catch { caught = error }
        #expect(caught?.exitStatus == .unavailable)
        #expect(caught?.message.contains("\(mount) is on a read-only file system") == true)
    }

    private func run(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// SQLite counts no memory in a process whose first connection `AppDatabase` opened
    /// (the statistics cost every allocation a process-wide mutex). A test that opened a
    /// connection of its own first leaves SQLite's defaults: then nothing is asserted.
    @Test func sqliteKeepsNoMemoryStatistics() throws {
        _ = try TemporaryStore()
        guard AppDatabase.sqliteSettings == SQLITE_OK else {
            #expect(AppDatabase.sqliteSettings == SQLITE_MISUSE)
            return
        }
        #expect(sqlite3_memory_used() == 0 && sqlite3_memory_highwater(0) == 0)
    }
}
