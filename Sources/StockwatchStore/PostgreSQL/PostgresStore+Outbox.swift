import Foundation
import PostgresNIO
import StockwatchModel

extension PostgresStore: OutboxStore {
    public func channelsWithDueDeliveries(now: Date) throws(StockwatchError) -> Set<String> {
        let now = now.milliseconds
        return Set(try read { db in
            try await db.values("""
                SELECT DISTINCT channel FROM deliveries WHERE status IN ('pending', 'retry') AND next_attempt_at <= \(now)
                UNION SELECT DISTINCT channel FROM deliveries WHERE status = 'sending' AND lease_until <= \(now)
                """, String.self)
        })
    }

    /// Locks the due rows with `FOR UPDATE SKIP LOCKED`, so that notify processes on any
    /// number of machines claim disjoint batches without waiting for each other.
    public func claimDeliveries(
        channels: Set<String>, fanOut: Set<String>, limit: Int, cutoff: Date, leaseUntil: Date, now: Date
    ) async throws(StockwatchError) -> (jobs: [DeliveryJob], failed: [DeliveryJSON]) {
        let channelList = channels.sorted(), lease = leaseUntil.milliseconds, at = now.milliseconds, cutoff = cutoff.milliseconds
        return try await transaction { db in
            // The claimed ids as an array, not a join: joined, the planner hashes the
            // whole table (every delivery ever sent) to update a batch.
            let claimed = try await db.rows("""
                UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, lease_until = \(lease), updated_at = \(at)
                WHERE d.id = ANY(ARRAY(
                    SELECT id FROM deliveries
                    WHERE channel = ANY(\(channelList)) AND ((status IN ('pending', 'retry') AND next_attempt_at <= \(cutoff))
                        OR (status = 'sending' AND lease_until <= \(at)))
                    LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED))
                RETURNING d.id, d.notification_id, d.channel, d.target, d.attempts
                """, (Int64, Int64, String, String?, Int).self)
            var ids: [Int64] = []
            var parents: [(id: Int64, notification: Int64, channel: String, attempts: Int)] = []
            for (id, notification, channel, target, attempts) in claimed {
                if fanOut.contains(channel), target == nil { parents.append((id, notification, channel, attempts)) } else { ids.append(id) }
            }
            var failed: [DeliveryJSON] = []
            if !parents.isEmpty {
                // A fan-out row becomes one claimed row per active device of the notification's user.
                var devices: [Int64: [Int64]] = [:]
                for (notification, device) in try await db.rows("""
                    SELECT n.id, d.id FROM notifications n JOIN devices d ON d.user_id = n.user_id AND d.active
                    WHERE n.id = ANY(\(parents.map(\.notification))) ORDER BY n.id, d.id
                    """, (Int64, Int64).self) {
                    devices[notification, default: []].append(device)
                }
                // Each row becomes its first device's (no delete: deleting checks the
                // attempts table for every row, and the commonest user has one phone);
                // the other devices get rows of their own.
                var firsts: (ids: [Int64], targets: [String], devices: [Int64]) = ([], [], [])
                var others: (notifications: [Int64], channels: [String], targets: [String], devices: [Int64]) = ([], [], [], [])
                for parent in parents {
                    guard let list = devices[parent.notification] else {
                        let error = DeliveryReason.noDevice
                        try await Self.finish(db, id: parent.id, attempt: parent.attempts, status: .failed, nextAttemptAt: at, error: error, now: at)
                        failed.append(DeliveryJSON(id: parent.id, notificationId: parent.notification, channel: parent.channel, target: nil,
                                                   status: .failed, attempts: parent.attempts, error: error))
                        continue
                    }
                    firsts.ids.append(parent.id)
                    firsts.targets.append(DeliveryRecord.deviceTarget(list[0]))
                    firsts.devices.append(list[0])
                    for device in list.dropFirst() {
                        others.notifications.append(parent.notification)
                        others.channels.append(parent.channel)
                        others.targets.append(DeliveryRecord.deviceTarget(device))
                        others.devices.append(device)
                    }
                }
                if !firsts.ids.isEmpty {
                    try await db.execute("""
                        UPDATE deliveries d SET target = x.target, device_id = x.device_id
                        FROM unnest(\(firsts.ids)::BIGINT[], \(firsts.targets)::TEXT[], \(firsts.devices)::BIGINT[]) AS x(id, target, device_id)
                        WHERE d.id = ANY(\(firsts.ids)) AND d.id = x.id
                        """)
                    ids += firsts.ids
                }
                if !others.devices.isEmpty {
                    ids += try await db.rows("""
                        INSERT INTO deliveries (notification_id, channel, target, device_id, status, attempts, next_attempt_at, lease_until, created_at, updated_at)
                        SELECT notification_id, channel, target, device_id, 'sending', 1, \(at), \(lease), \(at), \(at)
                        FROM unnest(\(others.notifications)::BIGINT[], \(others.channels)::TEXT[], \(others.targets)::TEXT[], \(others.devices)::BIGINT[])
                            WITH ORDINALITY AS x(notification_id, channel, target, device_id, n)
                        ORDER BY n RETURNING id
                        """, Int64.self)
                }
            }
            return (try await Self.jobs(db, ids: ids.sorted()), failed)
        }
    }

    /// The claimed rows joined with their notification, user and device. A device is
    /// found only while it still belongs to the notification's user.
    static func jobs(_ db: PostgresConnection, ids: [Int64]) async throws -> [DeliveryJob] {
        guard !ids.isEmpty else { return [] }
        let rows = try await db.query("""
            SELECT d.id, d.channel, d.target, d.attempts, n.id, n.alert_id, u.name, n.symbol, n.price, n.observed_at, n.message,
                   dv.id, dv.fcm_token, dv.active, (d.attempts = 1 AND d.last_error IS NOT NULL)
            FROM deliveries d JOIN notifications n ON n.id = d.notification_id JOIN users u ON u.id = n.user_id
            LEFT JOIN devices dv ON dv.id = d.device_id AND dv.user_id = n.user_id
            WHERE d.id = ANY(\(ids)) ORDER BY d.id
            """, logger: logger)
        var jobs: [DeliveryJob] = []
        for try await (id, channel, target, attempts, nid, alertID, user, symbol, price, observed, message, deviceID, token, active, held)
            in rows.decode((Int64, String, String?, Int, Int64, Int64?, String, String, Double, Int64, String, Int64?, String?, Bool?, Bool).self) {
            jobs.append(DeliveryJob(
                deliveryID: id, attempt: attempts, channel: channel, target: target,
                notification: NotificationPayload(
                    id: nid, alertId: alertID, user: user, symbol: symbol, price: price, observedAt: Date(milliseconds: observed), message: message),
                device: deviceID.map { DeliveryJob.Device(id: $0, fcmToken: token ?? "", active: active ?? false) }, heldForQuietHours: held))
        }
        return jobs
    }

    public func renewClaims(_ claims: [Int64: Int], leaseUntil: Date, now: Date) async throws(StockwatchError) -> Set<Int64> {
        guard !claims.isEmpty else { return [] }
        let ids = Array(claims.keys), attempts = ids.map { claims[$0]! }
        let lease = leaseUntil.milliseconds, at = now.milliseconds
        return Set(try await transaction { db in
            try await db.values("""
                UPDATE deliveries d SET lease_until = \(lease), updated_at = \(at)
                FROM unnest(\(ids)::BIGINT[], \(attempts)::INT[]) AS c(id, attempt)
                WHERE d.id = ANY(\(ids)) AND d.id = c.id AND d.attempts = c.attempt AND d.status = 'sending'
                RETURNING d.id
                """, Int64.self)
        })
    }

    /// All outcomes in one statement: the claims that still hold get their outcome and
    /// their attempt row, and a dead token's device is deactivated.
    public func recordOutcomes(_ outcomes: [DeliveryOutcome], now: Date) async throws(StockwatchError) -> [DeliveryJSON] {
        guard !outcomes.isEmpty else { return [] }
        let rows = outcomes.map {
            OutcomeRow(id: $0.job.deliveryID, attempt: $0.job.attempt, status: $0.status.rawValue, next_attempt_at: $0.nextAttemptAt.milliseconds,
                       error: $0.error, deactivate: $0.deactivateDevice, device_id: $0.job.device?.id)
        }
        let document: String
        do { document = String(decoding: try JSONEncoder().encode(rows), as: UTF8.self) } catch { throw .internal("cannot encode outcomes: \(error)") }
        let at = now.milliseconds
        // The ids again as arrays so that the planner looks the rows up by key instead of
        // hashing whole tables (it cannot count a JSON document's rows).
        let ids = rows.map(\.id), deactivated = rows.compactMap { $0.deactivate ? $0.device_id : nil }
        let held = Set(try await transaction { db in
            try await db.values("""
                WITH o AS (
                    SELECT * FROM jsonb_to_recordset(\(document)::jsonb)
                        AS x(id BIGINT, attempt INT, status TEXT, next_attempt_at BIGINT, error TEXT, deactivate BOOLEAN, device_id BIGINT)),
                done AS (
                    UPDATE deliveries d SET status = o.status, next_attempt_at = o.next_attempt_at, lease_until = NULL, last_error = o.error, updated_at = \(at)
                    FROM o WHERE d.id = ANY(\(ids)) AND d.id = o.id AND d.status = 'sending' AND d.attempts = o.attempt
                    RETURNING d.id, o.attempt, o.status, o.error, o.deactivate, o.device_id),
                logged AS (
                    INSERT INTO delivery_attempts (delivery_id, attempt, finished_at, outcome, error)
                    SELECT id, attempt, \(at), status, error FROM done ON CONFLICT DO NOTHING),
                off AS (
                    UPDATE devices v SET active = FALSE, deactivated_reason = done.error, updated_at = \(at)
                    FROM done WHERE v.id = ANY(\(deactivated)) AND done.deactivate AND v.id = done.device_id AND v.active)
                SELECT id FROM done
                """, Int64.self)
        })
        return outcomes.filter { held.contains($0.job.deliveryID) }.map { outcome in
            let job = outcome.job
            return DeliveryJSON(id: job.deliveryID, notificationId: job.notification.id, channel: job.channel, target: job.target,
                                status: outcome.status, attempts: job.attempt, error: outcome.error)
        }
    }

    public func holdClaims(_ claims: [Int64: Int], until: Date, reason: String, now: Date) async throws(StockwatchError) -> Int {
        guard !claims.isEmpty else { return 0 }
        let ids = Array(claims.keys), attempts = ids.map { claims[$0]! }
        return try await transaction { db in
            try await db.values("""
                UPDATE deliveries d SET status = 'pending', attempts = d.attempts - 1, next_attempt_at = \(until.milliseconds), lease_until = NULL,
                    last_error = \(reason), updated_at = \(now.milliseconds)
                FROM unnest(\(ids)::BIGINT[], \(attempts)::INT[]) AS c(id, attempt)
                WHERE d.id = c.id AND d.status = 'sending' AND d.attempts = c.attempt
                RETURNING d.id
                """, Int64.self).count
        }
    }

    /// Moves a claimed row to its outcome and keeps the attempt; false when the claim was lost.
    @discardableResult
    static func finish(_ db: PostgresConnection, id: Int64, attempt: Int, status: DeliveryStatus, nextAttemptAt: Int64, error: String?, now: Int64) async throws -> Bool {
        guard try await db.value("""
            UPDATE deliveries SET status = \(status.rawValue), next_attempt_at = \(nextAttemptAt), lease_until = NULL, last_error = \(error), updated_at = \(now)
            WHERE id = \(id) AND status = 'sending' AND attempts = \(attempt) RETURNING id
            """, Int64.self) != nil
        else { return false }
        try await db.execute("""
            INSERT INTO delivery_attempts (delivery_id, attempt, finished_at, outcome, error)
            VALUES (\(id), \(attempt), \(now), \(status.rawValue), \(error)) ON CONFLICT DO NOTHING
            """)
        return true
    }

    /// Ends the waiting deliveries (pending, retry, or claimed and in flight) of these
    /// devices as failed with `reason`, in the caller's transaction (see AppDatabase.failWaiting).
    static func failWaiting(_ db: PostgresConnection, deviceIDs: [Int64], reason: String, now: Date) async throws {
        let at = now.milliseconds
        try await db.execute("""
            WITH w AS (
                SELECT id, attempts + CASE WHEN status = 'sending' THEN 0 ELSE 1 END AS attempt FROM deliveries
                WHERE device_id = ANY(\(deviceIDs)) AND status IN ('pending', 'retry', 'sending') FOR UPDATE),
            u AS (
                UPDATE deliveries d SET status = 'failed', attempts = w.attempt, lease_until = NULL, last_error = \(reason), updated_at = \(at)
                FROM w WHERE d.id = w.id RETURNING d.id, w.attempt)
            INSERT INTO delivery_attempts (delivery_id, attempt, finished_at, outcome, error)
            SELECT id, attempt, \(at), 'failed', \(reason) FROM u ON CONFLICT DO NOTHING
            """)
    }

    public func notifications(_ query: NotificationQuery) throws(StockwatchError) -> [NotificationJSON] {
        try read { db in
            let since = query.since?.milliseconds
            let rows = try await db.rows("""
                SELECT n.id, n.alert_id, n.user_id, u.name, n.symbol, n.price, n.observed_at, n.message, n.created_at, n.state, n.state_changed_at, n.state_device_id
                FROM notifications n JOIN users u ON u.id = n.user_id
                WHERE (\(query.beforeID)::BIGINT IS NULL OR n.id < \(query.beforeID)) AND (\(query.symbol)::TEXT IS NULL OR n.symbol = \(query.symbol))
                  AND (\(query.alertID)::BIGINT IS NULL OR n.alert_id = \(query.alertID)) AND (\(since)::BIGINT IS NULL OR n.created_at >= \(since))
                  AND (\(query.userID)::BIGINT IS NULL OR n.user_id = \(query.userID)) AND (\(query.state?.rawValue)::TEXT IS NULL OR n.state = \(query.state?.rawValue))
                ORDER BY CASE WHEN \(query.beforeID)::BIGINT IS NULL THEN n.created_at END DESC, n.id DESC
                LIMIT \(Int64(query.limit))
                """, NotificationColumns.self)
            return try await Self.json(rows, db).map(\.notification)
        }
    }

    typealias NotificationColumns = (Int64, Int64?, Int64, String, String, Double, Int64, String, Int64, String, Int64?, Int64?)

    /// Notifications with their deliveries, in the rows' order.
    static func json(_ rows: [NotificationColumns], _ db: PostgresConnection) async throws -> [(userID: Int64, notification: NotificationJSON)] {
        guard !rows.isEmpty else { return [] }
        var deliveries: [Int64: [DeliveryJSON]] = [:]
        for (id, notification, channel, target, status, attempts, error) in try await db.rows("""
            SELECT id, notification_id, channel, target, status, attempts, last_error FROM deliveries
            WHERE notification_id = ANY(\(rows.map(\.0))) ORDER BY id
            """, (Int64, Int64, String, String?, String, Int, String?).self) {
            guard let status = DeliveryStatus(rawValue: status) else { throw StockwatchError.internal("delivery \(id) has status '\(status)'") }
            deliveries[notification, default: []].append(
                DeliveryJSON(id: id, notificationId: notification, channel: channel, target: target, status: status, attempts: attempts, error: error))
        }
        return rows.map { id, alertID, userID, user, symbol, price, observed, message, created, state, stateChanged, stateDevice in
            (userID, NotificationJSON(
                id: id, alertId: alertID, user: user, symbol: symbol, price: price, observedAt: Date(milliseconds: observed),
                message: message, createdAt: Date(milliseconds: created), deliveries: deliveries[id] ?? [],
                state: NotificationState(rawValue: state) ?? .unread, stateChangedAt: stateChanged.map(Date.init(milliseconds:)), stateDeviceId: stateDevice))
        }
    }
}

/// One outcome as `recordOutcomes` sends it, inside a JSON array.
private struct OutcomeRow: Encodable {
    let id: Int64
    let attempt: Int
    let status: String
    let next_attempt_at: Int64
    let error: String?
    let deactivate: Bool
    let device_id: Int64?
}

extension PostgresStore: HealthStore {
    public func deliveryHealth(overdueBefore: Date, deadSince: Date) throws(StockwatchError) -> StatusReport.Deliveries {
        let limit = overdueBefore.milliseconds, dead = deadSince.milliseconds
        return try read { db in
            var health = StatusReport.Deliveries()
            // As on SQLite: each status from its partial index, and the rest sent.
            var sent = 0
            for (status, count) in try await db.rows("""
                SELECT status, count(*) FROM deliveries WHERE status IN ('pending', 'retry') GROUP BY status
                UNION ALL SELECT 'sending', count(*) FROM deliveries WHERE status = 'sending'
                UNION ALL SELECT status, count(*) FROM deliveries WHERE status IN ('failed', 'dead') GROUP BY status
                UNION ALL SELECT 'all', count(*) FROM deliveries
                """, (String, Int).self) {
                if status == "all" { sent += count } else if count > 0 { health.counts[status] = count; sent -= count }
            }
            if sent > 0 { health.counts["sent"] = sent }
            health.overdue = try await db.value("""
                SELECT (SELECT count(*) FROM deliveries WHERE status IN ('pending', 'retry') AND next_attempt_at < \(limit))
                     + (SELECT count(*) FROM deliveries WHERE status = 'sending' AND lease_until < \(limit))
                """, Int.self) ?? 0
            health.recentlyDead = try await db.row(
                "SELECT count(*) FROM deliveries WHERE status = 'dead' AND updated_at >= \(dead)", Int.self) ?? 0
            return health
        }
    }

    public func recentFailedAttempts(limit: Int) throws(StockwatchError) -> [StatusReport.AttemptError] {
        try read { db in
            try await db.rows("""
                SELECT a.delivery_id, d.channel, a.attempt, a.finished_at, a.outcome, a.error
                FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
                WHERE a.outcome <> 'sent' ORDER BY a.id DESC LIMIT \(Int64(limit))
                """, (Int64, String, Int, Int64, String, String?).self
            ).map {
                StatusReport.AttemptError(deliveryId: $0.0, channel: $0.1, attempt: $0.2, at: Date(milliseconds: $0.3), outcome: $0.4, error: $0.5)
            }
        }
    }

    public func newestObservedAt(symbols: [String]) throws(StockwatchError) -> [String: Date] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try await db.rows(
                "SELECT symbol, max(observed_at) FROM quotes WHERE symbol = ANY(\(symbols)) GROUP BY symbol", (String, Int64).self
            ).map { ($0.0, Date(milliseconds: $0.1)) })
        }
    }

    public func storageBytes() throws(StockwatchError) -> Int64 {
        try read { db in try await db.value("SELECT pg_database_size(current_database())", Int64.self) ?? 0 }
    }
}
