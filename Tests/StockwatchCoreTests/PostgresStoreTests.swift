import Foundation
import PostgresNIO
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

/// What only the PostgreSQL store does (the shared behaviour is StoreContractTests').
@Suite(.enabled(if: TestPostgres.available, "no PostgreSQL: set PGHOST (or run under pg_virtualenv)"))
struct PostgresStoreTests {
    /// One column of a query's rows, read on a connection of its own.
    static func column<Value: PostgresDecodable & Sendable>(_ location: PostgresLocation, _ query: PostgresQuery, as: Value.Type) async throws -> [Value] {
        try await PostgresDatabase.withConnection(location) { connection in
            var values: [Value] = []
            for try await value in try await connection.query(query, logger: PostgresDatabase.logger).decode(Value.self) { values.append(value) }
            return values
        }
    }

    /// The first evaluate after importing a million alerts was planned on the statistics
    /// of an empty table and ran for minutes: a bulk import refreshes them at once.
    @Test func aBulkImportRefreshesThePlannersStatistics() async throws {
        let location = try await TestPostgres.newDatabase()
        let store = try await Task.detached { try PostgresStore(location) }.value
        func analyzed() async throws -> Bool {
            try await PostgresDatabase.withConnection(location) { connection in
                var result = false
                for try await value in try await connection.query(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'alerts'", logger: PostgresDatabase.logger
                ).decode(Bool.self) { result = value }
                return result
            }
        }
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        func spec(_ index: Int) -> AlertSpec {
            var spec = AlertSpec(symbol: "S\(index % 50)", condition: .above(Double(index + 1)))
            spec.channels = ["stdout"]
            return spec
        }
        let few = (0..<10).map(spec)
        _ = try store.addAlerts(few, limitPerUser: nil, now: now)
        #expect(try await !analyzed())
        let many = (0..<PostgresStore.bulkRows).map(spec)
        _ = try store.addAlerts(many, limitPerUser: nil, now: now)
        #expect(try await analyzed())

        // The first evaluate starts them all and empties alert_starts: planned on the
        // statistics that still counted its rows, the next evaluates ran 10 times slower.
        func startsAnalyzed() async throws -> Int {
            try await PostgresDatabase.withConnection(location) { connection in
                var count = 0
                for try await value in try await connection.query(
                    "SELECT analyze_count::INT FROM pg_stat_user_tables WHERE relname = 'alert_starts'", logger: PostgresDatabase.logger
                ).decode(Int.self) { count = value }
                return count
            }
        }
        // Autovacuum must not be the one that analyzes it during the test.
        try await PostgresDatabase.withConnection(location) { connection in
            _ = try await connection.query("ALTER TABLE alert_starts SET (autovacuum_enabled = false)", logger: PostgresDatabase.logger)
        }
        let before = try await startsAnalyzed()
        _ = try store.addQuotes((0..<50).map { QuoteJSON(symbol: "S\($0)", price: 1, provider: "stooq", observedAt: now.addingTimeInterval(60)) }, fetchedAt: now.addingTimeInterval(61))
        _ = try await Task.detached { try store.evaluate(now: now.addingTimeInterval(62), maxAgeSeconds: 3600, prefilter: true) }.value
        // Statistics are counted asynchronously by the server.
        var after = before
        for _ in 0..<50 where after == before {
            try await Task.sleep(for: .milliseconds(100))
            after = try await startsAnalyzed()
        }
        #expect(after > before)
    }

    /// Migration v13: a level that re-arms at its level keeps `armed` stored while it fires
    /// (its state is derived: StoreContractTests.aLevelShowsTheStateItsSymbolsLastJudgedPriceSays),
    /// found by level in `alerts_levels`; one with a margin is written as before.
    @Test func aFiringLevelWritesNoStateToItsAlert() async throws {
        let location = try await TestPostgres.newDatabase()
        let store = try await Task.detached { try PostgresStore(location) }.value
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        _ = try store.addUser(name: "alice", tokenHash: String(repeating: "a", count: 64), now: now)
        _ = try store.addQuotes([QuoteJSON(symbol: "AAPL", price: 95, provider: "stooq", observedAt: now)], fetchedAt: now)
        var derived = AlertSpec(symbol: "AAPL", condition: .above(100))
        derived.user = "alice"
        derived.channels = ["stdout"]
        var margin = derived
        margin.rearmMarginPercent = 1
        _ = try store.addAlerts([derived, margin], limitPerUser: nil, now: now)
        _ = try store.evaluate(now: now.addingTimeInterval(10), maxAgeSeconds: 3600, prefilter: true)
        _ = try store.addQuotes([QuoteJSON(symbol: "AAPL", price: 101, provider: "stooq", observedAt: now.addingTimeInterval(60))], fetchedAt: now)
        #expect(try store.evaluate(now: now.addingTimeInterval(70), maxAgeSeconds: 3600, prefilter: true).notifications.count == 2)
        #expect(try await Self.column(location, "SELECT state FROM alerts ORDER BY id", as: String.self) == ["armed", "firing"])
    }

    /// As on SQLite (EvaluateServiceTests.aLevelThatDisagreesWithItsSymbolsPriceStartsAgainArmed):
    /// should a started level judge to a state its symbol's last judged price cannot say (the
    /// price is tampered with here; every alert is read, as without the seeks), it starts
    /// again after the newest quote, armed, and fires on the next one that holds its rule.
    @Test func aLevelThatDisagreesWithItsSymbolsPriceStartsAgain() async throws {
        let location = try await TestPostgres.newDatabase()
        let store = try await Task.detached { try PostgresStore(location) }.value
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        func quote(_ price: Double, _ seconds: Double) -> QuoteJSON {
            QuoteJSON(symbol: "AAPL", price: price, provider: "stooq", observedAt: now.addingTimeInterval(seconds))
        }
        _ = try store.addUser(name: "alice", tokenHash: String(repeating: "a", count: 64), now: now)
        _ = try store.addQuotes([quote(95, 0)], fetchedAt: now)
        func spec(_ level: Double) -> AlertSpec {
            var spec = AlertSpec(symbol: "AAPL", condition: .above(level))
            spec.user = "alice"
            spec.channels = ["stdout"]
            return spec
        }
        // A follower judges the quote first: the new alert then judges it from its start.
        let follower = try #require(try store.addAlerts([spec(50)], limitPerUser: nil, now: now).first?.id)
        _ = try store.evaluate(now: now.addingTimeInterval(5), maxAgeSeconds: 3600, prefilter: true)
        let id = try #require(try store.addAlerts([spec(100)], limitPerUser: nil, now: now.addingTimeInterval(6)).first?.id)
        try await PostgresDatabase.withConnection(location) { connection in
            _ = try await connection.query("UPDATE evaluation_progress SET judged_price = 150", logger: PostgresDatabase.logger)
        }
        #expect(try store.evaluate(now: now.addingTimeInterval(10), maxAgeSeconds: 3600, prefilter: false).notifications.isEmpty)
        #expect(try store.alert(id: id, ownerID: nil).state == .armed)
        #expect(try await Self.column(location, "SELECT start_at FROM alert_starts WHERE alert_id = \(id)", as: Int64.self) == [now.milliseconds + 1])
        _ = try store.addQuotes([quote(101, 60)], fetchedAt: now)
        #expect(try store.evaluate(now: now.addingTimeInterval(70), maxAgeSeconds: 3600, prefilter: true).notifications.map(\.alertId) == [id])
        #expect(try store.alert(id: id, ownerID: nil).state == .firing)
        #expect(try store.alert(id: follower, ownerID: nil).state == .firing)
    }

    /// As on SQLite (StoreTests.everyForeignKeyLeadsAnIndex): a delete's SET NULL or
    /// CASCADE finds the referencing rows through an index, not a scan per deleted row.
    @Test func everyForeignKeyLeadsAnIndex() async throws {
        let location = try await TestPostgres.newDatabase()
        let unindexed = try await PostgresDatabase.withConnection(location) { connection in
            var unindexed: [String] = []
            for try await name in try await connection.query("""
                SELECT c.conrelid::regclass::text || '.' || a.attname FROM pg_constraint c
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                WHERE c.contype = 'f' AND (cardinality(c.conkey) <> 1
                    OR NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1]))
                ORDER BY 1
                """, logger: PostgresDatabase.logger).decode(String.self) { unindexed.append(name) }
            return unindexed
        }
        #expect(unindexed == [])
    }

    /// v2 moves each alert's start out of its row: a store migrated from v1 keeps every
    /// start (a new alert still judges from the quote it was added at), and nothing else.
    @Test func theV2MigrationKeepsEveryAlertsStart() async throws {
        let location = try await TestPostgres.newDatabase(migrated: false)
        try await PostgresDatabase.withConnection(location) { connection in
            for statement in PostgresMigrations.all[0].statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: PostgresDatabase.logger) }
            for statement in [
                "CREATE TABLE stockwatch_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                "INSERT INTO stockwatch_migrations VALUES ('v1-schema-of-sqlite-v7', 0)",
                "INSERT INTO users (name, token_hash, created_at) VALUES ('admin', repeat('a', 64), 0)",
                """
                INSERT INTO alerts (user_id, symbol, kind, value, trigger, channels, created_at, start_at)
                VALUES (1, 'AAPL', 'above', 1, 'once', '["stdout"]', 0, 1780000000000), (1, 'AAPL', 'above', 2, 'once', '["stdout"]', 0, NULL),
                       (1, 'MSFT', 'below', 3, 'once', '["stdout"]', 0, 0)
                """,
            ] { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: PostgresDatabase.logger) }
        }
        let report = try await PostgresDatabase.migrate(location)
        #expect(report.applied == PostgresMigrations.all.dropFirst().map(\.name))
        let store = try await Task.detached { try PostgresStore(location) }.value
        let alerts = try store.alerts(AlertQuery())
        #expect(alerts.map(\.id) == [1, 2, 3])
        let starts = try await PostgresDatabase.withConnection(location) { connection in
            var starts: [Int64: Int64] = [:]
            for try await (id, start) in try await connection.query(
                "SELECT alert_id, start_at FROM alert_starts", logger: PostgresDatabase.logger
            ).decode((Int64, Int64).self) { starts[id] = start }
            return starts
        }
        #expect(starts == [1: 1_780_000_000_000, 3: 0])
    }

    /// v14 drops `notifications.quote_id` and keys a notification by its alert and time: a
    /// store migrated from v13 keeps every notification and its id counter, and refuses a
    /// second notification of one alert at one time once the quote is pruned.
    @Test func theV14MigrationKeepsEveryNotification() async throws {
        let location = try await TestPostgres.newDatabase(migrated: false)
        let v14 = try #require(PostgresMigrations.all.firstIndex { $0.name == "v14-notifications-keyed-by-time" })
        try await PostgresDatabase.withConnection(location) { connection in
            var statements = ["CREATE TABLE stockwatch_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)"]
            for migration in PostgresMigrations.all[..<v14] {
                statements += migration.statements + ["INSERT INTO stockwatch_migrations VALUES ('\(migration.name)', 0)"]
            }
            statements += [
                "INSERT INTO users (name, token_hash, created_at) VALUES ('admin', repeat('a', 64), 0)",
                "INSERT INTO quotes (symbol, price, provider, observed_at, fetched_at) VALUES ('AAPL', 2, 'stooq', 1000, 1000)",
                "INSERT INTO alerts (user_id, symbol, kind, value, trigger, channels, created_at) VALUES (1, 'AAPL', 'above', 1, 'once', '[\"stdout\"]', 0)",
                """
                INSERT INTO notifications (alert_id, user_id, quote_id, symbol, price, observed_at, message, created_at, state)
                VALUES (1, 1, 1, 'AAPL', 2, 1000, 'm', 0, 'read'), (NULL, 1, NULL, 'AAPL', 2, 1000, 'm', 0, 'unread'), (NULL, 1, NULL, 'AAPL', 2, 2000, 'm', 0, 'unread')
                """,
                "DELETE FROM notifications WHERE id = 3",
            ]
            for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: PostgresDatabase.logger) }
        }
        let report = try await PostgresDatabase.migrate(location)
        #expect(report.applied == PostgresMigrations.all[v14...].map(\.name))
        try await PostgresDatabase.withConnection(location) { connection in
            var kept: [Int64: String] = [:]
            for try await (id, state) in try await connection.query(
                "SELECT id, state FROM notifications", logger: PostgresDatabase.logger
            ).decode((Int64, String).self) { kept[id] = state }
            #expect(kept == [1: "read", 2: "unread"])
            try await connection.query("DELETE FROM quotes", logger: PostgresDatabase.logger)
            let again = "INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at) VALUES (1, 1, 'AAPL', 2, 1000, 'm', 0)"
            await #expect(throws: (any Error).self) {
                try await connection.query(PostgresQuery(unsafeSQL: again), logger: PostgresDatabase.logger)
            }
            var next: [Int64] = []
            for try await id in try await connection.query(
                "INSERT INTO notifications (user_id, symbol, price, observed_at, message, created_at) VALUES (1, 'AAPL', 2, 3000, 'm', 0) RETURNING id",
                logger: PostgresDatabase.logger
            ).decode(Int64.self) { next.append(id) }
            // Past the deleted id 3 (and the one the refused insert drew).
            #expect(next.count == 1 && next[0] > 3)
        }
    }

    /// Evaluators split the symbols by hash bucket: one that finds a bucket held by
    /// another (here a transaction holding its lock) skips that bucket's symbols without
    /// waiting, judges the rest, and the next run judges the skipped ones, once.
    @Test func anEvaluatorSkipsTheBucketsAnotherHolds() async throws {
        let location = try await TestPostgres.newDatabase()
        let store = try await Task.detached { try PostgresStore(location) }.value
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        let bucketOf = try await PostgresDatabase.withConnection(location) { connection in
            var buckets: [String: Int] = [:]
            let symbols = ["AAPL", "MSFT", "IBM", "TSLA", "NVDA", "AMZN"]
            for try await (symbol, bucket) in try await connection.query(
                "SELECT s, \(unescaped: PostgresStore.bucket(of: "s")) FROM unnest(\(symbols)::TEXT[]) AS s", logger: PostgresDatabase.logger
            ).decode((String, Int).self) { buckets[symbol] = bucket }
            return buckets
        }
        let held = try #require(bucketOf["AAPL"])
        let other = try #require(bucketOf.first { $0.value != held }?.key)
        _ = try store.addUser(name: "alice", tokenHash: String(repeating: "a", count: 64), now: now)
        _ = try store.addQuotes([QuoteJSON(symbol: "AAPL", price: 90, provider: "stooq", observedAt: now.addingTimeInterval(-60)),
                                 QuoteJSON(symbol: other, price: 90, provider: "stooq", observedAt: now.addingTimeInterval(-60))], fetchedAt: now)
        var specs: [AlertSpec] = []
        for symbol in ["AAPL", other] {
            var spec = AlertSpec(symbol: symbol, condition: .above(100))
            spec.user = "alice"
            spec.channels = ["stdout"]
            specs.append(spec)
        }
        _ = try store.addAlerts(specs, limitPerUser: nil, now: now.addingTimeInterval(-50))
        _ = try store.addQuotes([QuoteJSON(symbol: "AAPL", price: 110, provider: "stooq", observedAt: now.addingTimeInterval(-10)),
                                 QuoteJSON(symbol: other, price: 110, provider: "stooq", observedAt: now.addingTimeInterval(-10))], fetchedAt: now)

        // Another evaluator holds AAPL's bucket for the length of its transaction.
        let first = try await PostgresDatabase.withConnection(location) { connection in
            try await connection.query("BEGIN", logger: PostgresDatabase.logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresStore.evaluateLockClass), \(Int32(held)))", logger: PostgresDatabase.logger)
            let report = try await Task.detached { try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true) }.value
            try await connection.query("COMMIT", logger: PostgresDatabase.logger)
            return report
        }
        #expect(first.notifications.map(\.symbol) == [other])
        let second = try store.evaluate(now: now.addingTimeInterval(1), maxAgeSeconds: 3600, prefilter: true)
        #expect(second.notifications.map(\.symbol) == ["AAPL"])
        #expect(try store.evaluate(now: now.addingTimeInterval(2), maxAgeSeconds: 3600, prefilter: false).notifications.isEmpty)
        #expect(try store.notifications(NotificationQuery()).count == 2)
    }

    /// Two writers commit out of id order: A draws quote id N and commits after B, which
    /// drew N+1. A reader that had moved past N+1 by id would never see N; the stream log
    /// follows commit order, so the reader gets B's quote, then A's.
    @Test func aStreamReaderSeesCommitsOutOfIdOrder() async throws {
        let location = try await TestPostgres.newDatabase()
        let store = try await Task.detached { try PostgresStore(location) }.value
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        let start = try store.streamStart()
        let (lowID, afterB) = try await PostgresDatabase.withConnection(location) { writerA in
            try await writerA.query("BEGIN", logger: PostgresDatabase.logger)
            let a = try await PostgresStore.insert([QuoteJSON(symbol: "AAPL", price: 1, provider: "stooq", observedAt: now)], fetchedAt: now, writerA)
            // B draws the next id and commits while A is still open.
            let stored = try await Task.detached {
                try store.addQuotes([QuoteJSON(symbol: "MSFT", price: 2, provider: "stooq", observedAt: now)], fetchedAt: now)
            }.value
            #expect(stored.count == 1)
            let afterB = try store.streamBatch(after: start, limit: 100)
            #expect(afterB.quotes.map(\.symbol) == ["MSFT"])
            // A logs and commits last.
            try await PostgresStore.logForStream(writerA, quotes: a.ids, now: now)
            try await writerA.query("COMMIT", logger: PostgresDatabase.logger)
            return (a.ids[0], afterB)
        }
        let ids = try await PostgresDatabase.withConnection(location) { connection in
            var ids: [String: Int64] = [:]
            for try await (symbol, id) in try await connection.query("SELECT symbol, id FROM quotes", logger: PostgresDatabase.logger).decode((String, Int64).self) {
                ids[symbol] = id
            }
            return ids
        }
        #expect(ids["AAPL"] == lowID && lowID < ids["MSFT"]!)  // the ids really are out of commit order
        let afterA = try store.streamBatch(after: afterB.position, limit: 100)
        #expect(afterA.quotes.map(\.symbol) == ["AAPL"])
        #expect(try store.streamBatch(after: afterA.position, limit: 100).quotes.isEmpty)
    }

    /// While one writer holds the stream log's lock (it has logged and not yet committed),
    /// another's log entry waits for it: entries are numbered in commit order.
    @Test func aSecondWriterLogsOnlyAfterTheFirstCommits() async throws {
        let location = try await TestPostgres.newDatabase()
        let store = try await Task.detached { try PostgresStore(location) }.value
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        let reader = try await Task.detached { try PostgresStore(location) }.value
        let start = try reader.streamStart()
        try await PostgresDatabase.withConnection(location) { writerA in
            try await writerA.query("BEGIN", logger: PostgresDatabase.logger)
            let a = try await PostgresStore.insert([QuoteJSON(symbol: "AAPL", price: 1, provider: "stooq", observedAt: now)], fetchedAt: now, writerA)
            try await PostgresStore.logForStream(writerA, quotes: a.ids, now: now)
            let writerB = Task.detached {
                try store.addQuotes([QuoteJSON(symbol: "MSFT", price: 2, provider: "stooq", observedAt: now)], fetchedAt: now)
            }
            // B waits on the lock; a reader (another process) sees neither yet.
            let waiting = try await PostgresDatabase.withConnection(location) { observer in
                for _ in 0..<500 {
                    for try await count in try await observer.query(
                        "SELECT count(*)::INT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", logger: PostgresDatabase.logger
                    ).decode(Int.self) where count > 0 { return true }
                    try await Task.sleep(for: .milliseconds(10))
                }
                return false
            }
            #expect(waiting)
            #expect(try reader.streamBatch(after: start, limit: 100).quotes.isEmpty)
            try await writerA.query("COMMIT", logger: PostgresDatabase.logger)
            _ = try await writerB.value
        }
        let batch = try reader.streamBatch(after: start, limit: 100)
        #expect(batch.quotes.map(\.symbol) == ["AAPL", "MSFT"])
    }

    /// A session whose connection the server closed (a restart, an administrator) fails
    /// the next call with `unavailable` (exit 69) at once: postgres-nio drops a statement
    /// written to a closed connection without failing it, and a notify --follow waited
    /// forever so.
    @Test func aCallOnASessionTheServerClosedFailsInsteadOfWaiting() async throws {
        let location = try await TestPostgres.newDatabase()
        let store = try await Task.detached { try PostgresStore(location) }.value
        _ = try store.providerStates()
        try await PostgresDatabase.withConnection(location) { connection in
            try await connection.query("""
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                """, logger: PostgresDatabase.logger)
        }
        for _ in 0..<500 where !store.sessionClosed.isClosed { try await Task.sleep(for: .milliseconds(10)) }
        #expect(store.sessionClosed.isClosed)
        // In a task of its own, so that a call that waits forever fails the test instead of hanging it.
        final class Answer: @unchecked Sendable {
            let lock = NSLock()
            var error: StockwatchError?
            var done = false
        }
        let answer = Answer()
        Task.detached {
            var failure: StockwatchError?
            do throws(StockwatchError) { _ = try store.providerStates() } catch { failure = error }
            answer.lock.withLock { answer.error = failure; answer.done = true }
        }
        for _ in 0..<1000 where !answer.lock.withLock({ answer.done }) { try await Task.sleep(for: .milliseconds(10)) }
        let error = answer.lock.withLock { answer.error }
        #expect(answer.lock.withLock { answer.done })
        #expect(error?.exitStatus == StockwatchError.unavailable("").exitStatus)
        #expect(error?.message.contains("lost the connection to PostgreSQL") == true)
        // The next call too, at once.
        #expect(throws: StockwatchError.self) { try store.alerts(AlertQuery()) }
    }
}
