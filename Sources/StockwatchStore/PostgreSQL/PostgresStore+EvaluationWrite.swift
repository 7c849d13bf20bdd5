import Foundation
import PostgresNIO
import StockwatchModel

/// What evaluate on PostgreSQL writes (PostgresStore+Evaluation.swift reads and judges).
extension Evaluation {
    /// One statement per table, each over arrays. Returns how many alerts it started.
    mutating func write(_ db: PostgresConnection) async throws -> Int {
        // Only rows whose state moved are rewritten (a firing's time is its notification's:
        // `PostgresStore.lastFiredAt`); a started alert's start row goes (it follows its
        // symbol's watermark from now on).
        let updates = alertChanges
        if !updates.isEmpty {
            // The ids once more as an array, so that the rows are found by key rather than
            // by hashing the table.
            let ids = updates.map(\.id)
            try await db.execute("""
                UPDATE alerts a SET state = c.state
                FROM unnest(\(ids)::BIGINT[], \(updates.map(\.state.rawValue))::TEXT[]) AS c(id, state)
                WHERE a.id = ANY(\(ids)) AND a.id = c.id
                """)
        }
        // A moved peak or low: its narrow row beside the alert (migration v8).
        let trails = trailChanges
        if !trails.isEmpty {
            try await db.execute("""
                INSERT INTO alert_trails (alert_id, trailing_from)
                SELECT * FROM unnest(\(trails.map(\.id))::BIGINT[], \(trails.map(\.trailingFrom))::DOUBLE PRECISION[])
                ON CONFLICT (alert_id) DO UPDATE SET trailing_from = excluded.trailing_from
                """)
        }
        let started = startedAlerts
        if !started.isEmpty {
            try await db.execute("DELETE FROM alert_starts WHERE alert_id = ANY(\(started))")
        }
        // See `restartedAlerts`: a start after the newest quote, as a new alert's.
        let restarted = restartedAlerts
        if !restarted.isEmpty {
            try await db.execute("""
                INSERT INTO alert_starts (alert_id, start_at)
                SELECT * FROM unnest(\(restarted.map(\.id))::BIGINT[], \(restarted.map(\.startAt))::BIGINT[])
                ON CONFLICT (alert_id) DO UPDATE SET start_at = excluded.start_at
                """)
        }
        // With the last price judged as current, which the derived levels' state reads
        // (NaN: none known).
        let marks = watermarks()
        if !marks.isEmpty {
            try await db.execute("""
                INSERT INTO evaluation_progress (symbol, observed_at, judged_price)
                SELECT symbol, observed_at, NULLIF(judged, 'NaN')
                FROM unnest(\(marks.map(\.symbol))::TEXT[], \(marks.map(\.observedAt))::BIGINT[], \(marks.map { $0.judged ?? .nan })::DOUBLE PRECISION[])
                    AS x(symbol, observed_at, judged)
                ON CONFLICT (symbol) DO UPDATE SET observed_at = excluded.observed_at, judged_price = excluded.judged_price
                """)
        }
        guard !firings.isEmpty else { return started.count }
        let fired = firings.map { (firing: $0, candidate: $0.alert) }
        // Ids are drawn in the firings' order (n); a pair already notified is skipped, never twice.
        let inserted = try await db.rows("""
            INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at)
            SELECT alert_id, user_id, symbol, price, observed_at, message, \(now)
            FROM unnest(\(fired.map(\.candidate.id))::BIGINT[], \(fired.map(\.candidate.userId))::BIGINT[],
                        \(fired.map(\.candidate.symbol))::TEXT[], \(fired.map(\.firing.price))::DOUBLE PRECISION[],
                        \(fired.map(\.firing.time))::BIGINT[], \(fired.map(\.firing.message))::TEXT[])
                WITH ORDINALITY AS x(alert_id, user_id, symbol, price, observed_at, message, n)
            ORDER BY n
            ON CONFLICT (alert_id, observed_at) DO NOTHING
            RETURNING id, alert_id, observed_at
            """, (Int64, Int64, Int64).self)
        let ids = Dictionary(uniqueKeysWithValues: inserted.map { (FiringKey(alert: $0.1, time: $0.2), $0.0) })
        let names = detailed ? try await PostgresStore.userNames(db) : [:]
        var deliveries: (notifications: [Int64], channels: [String]) = ([], [])
        for (firing, candidate) in fired {
            guard let id = ids[FiringKey(alert: candidate.id, time: firing.time)] else { continue }
            let channels = try channelList(candidate.channels)
            for channel in channels {
                deliveries.notifications.append(id)
                deliveries.channels.append(channel)
            }
            guard detailed else { continue }
            report.notifications.append(
                EvaluateReport.Notification(
                    id: id, alertId: candidate.id, user: names[candidate.userId] ?? "?", symbol: candidate.symbol,
                    price: firing.price, observedAt: Date(milliseconds: firing.time), message: firing.message, channels: channels))
        }
        report.notifications.sort { $0.id < $1.id }
        if !deliveries.notifications.isEmpty {
            try await db.execute("""
                INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at)
                SELECT notification_id, channel, 'pending', 0, \(now), \(now), \(now)
                FROM unnest(\(deliveries.notifications)::BIGINT[], \(deliveries.channels)::TEXT[]) WITH ORDINALITY AS x(notification_id, channel, n)
                ORDER BY n
                """)
            // notify --follow workers wake when this commits.
            try await PostgresStore.signalDeliveries(db)
        }
        // Last: the stream log's lock is held from here until the commit.
        try await PostgresStore.logForStream(db, notifications: inserted.map(\.0).sorted(), now: Date(milliseconds: now))
        return started.count
    }
}
