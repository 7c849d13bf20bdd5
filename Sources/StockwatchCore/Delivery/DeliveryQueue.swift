import Foundation
import GRDB
import StockwatchModel
import StockwatchStore

/// The deliveries table as a work queue shared by any number of notify processes.
///
/// A claim is one `UPDATE ... RETURNING` inside an IMMEDIATE transaction: it moves due
/// rows to `sending` with a lease and bumps their attempt count, so two processes never
/// hold the same row. A process that dies leaves its rows `sending`; once the lease ends
/// any run claims them again (at least once, never lost). Outcomes are written only while
/// the row is still this claim's (same status and attempt), so a run that overran its
/// lease cannot overwrite the outcome of the run that took over.
struct DeliveryQueue: Sendable {
    let database: AppDatabase
    let settings: NotifySettings

    /// Channels whose deliveries a `devices` fan-out replaces (see `claim`).
    let fanOutChannels: Set<String>

    /// Claims up to `limit` deliveries of `channels` that were due at `cutoff` (the run's
    /// start, so that a retry scheduled during this run waits for the next one), or whose
    /// lease has ended.
    ///
    /// An fcm delivery is written by evaluate once per notification; its claim replaces it
    /// by one delivery per active device of the user, claimed in the same transaction, or
    /// fails it when the user has none (returned in `failed`).
    func claim(channels: Set<String>, limit: Int, cutoff: Date, now: Date = Date()) async throws(StockwatchError) -> (jobs: [DeliveryJob], failed: [DeliveryJSON]) {
        let channelList = JSONOutput.encode(channels.sorted())
        let fanOut = fanOutChannels
        let leaseUntil = now.milliseconds + settings.leaseSeconds * 1000
        return try await database.writeAsync { db in
            let claimed = try Row.fetchAll(
                db,
                sql: """
                    UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = :lease, updated_at = :now
                    WHERE id IN (
                        SELECT id FROM deliveries INDEXED BY deliveries_due
                            WHERE status IN ('pending', 'retry') AND next_attempt_at <= :cutoff
                            AND channel IN (SELECT value FROM json_each(:channels))
                        UNION ALL
                        SELECT id FROM deliveries INDEXED BY deliveries_leased
                            WHERE status = 'sending' AND lease_until <= :now
                            AND channel IN (SELECT value FROM json_each(:channels))
                        LIMIT :limit)
                    RETURNING id, notification_id, channel, target, attempts
                    """,
                arguments: ["lease": leaseUntil, "now": now.milliseconds, "cutoff": cutoff.milliseconds, "channels": channelList, "limit": limit])

            var ids: [Int64] = []
            var failed: [DeliveryJSON] = []
            for row in claimed {
                let id: Int64 = row["id"]
                let channel: String = row["channel"]
                let target: String? = row["target"]
                guard fanOut.contains(channel), target == nil else {
                    ids.append(id)
                    continue
                }
                let notificationID: Int64 = row["notification_id"]
                let devices = try Int64.fetchAll(
                    db.cachedStatement(sql: """
                        SELECT d.id FROM devices d JOIN notifications n ON n.user_id = d.user_id
                        WHERE n.id = ? AND d.active = 1 ORDER BY d.id
                        """), arguments: [notificationID])
                if devices.isEmpty {
                    let error = DeliveryReason.noDevice
                    try Self.finish(db, id: id, attempt: row["attempts"], status: .failed, nextAttemptAt: now, error: error, now: now)
                    failed.append(DeliveryJSON(id: id, notificationId: notificationID, channel: channel, target: nil, status: .failed, attempts: row["attempts"], error: error))
                    continue
                }
                try db.cachedStatement(sql: "DELETE FROM deliveries WHERE id = ?").execute(arguments: [id])
                for device in devices {
                    try db.cachedStatement(sql: """
                        INSERT INTO deliveries (notification_id, channel, target, device_id, status, attempts, next_attempt_at, lease_until, created_at, updated_at)
                        VALUES (?, ?, ?, ?, 'sending', 1, ?, ?, ?, ?)
                        """
                    ).execute(arguments: [notificationID, channel, Self.deviceTarget(device), device, now.milliseconds, leaseUntil, now.milliseconds, now.milliseconds])
                    ids.append(db.lastInsertedRowID)
                }
            }
            return (try Self.jobs(db, ids: ids), failed)
        }
    }

    static func deviceTarget(_ id: Int64) -> String { "device:\(id)" }


    /// The claimed rows joined with their notification, user and device. A device is
    /// found only while it still belongs to the notification's user, so a delivery can
    /// never reach another user's phone, whatever happened to the device meanwhile.
    private static func jobs(_ db: Database, ids: [Int64]) throws -> [DeliveryJob] {
        guard !ids.isEmpty else { return [] }
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT d.id, d.channel, d.target, d.attempts, n.id AS nid, n.alert_id, u.name, n.symbol, n.price, n.observed_at, n.message,
                       dv.id AS device_id, dv.fcm_token, dv.active
                FROM deliveries d JOIN notifications n ON n.id = d.notification_id JOIN users u ON u.id = n.user_id
                LEFT JOIN devices dv ON dv.id = d.device_id AND dv.user_id = n.user_id
                WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.id
                """, arguments: [JSONOutput.encode(ids)])
        return rows.map { row in
            let deviceID: Int64? = row["device_id"]
            return DeliveryJob(
                deliveryID: row["id"], attempt: row["attempts"], channel: row["channel"], target: row["target"],
                notification: NotificationPayload(
                    id: row["nid"], alertId: row["alert_id"], user: row["name"], symbol: row["symbol"], price: row["price"],
                    observedAt: Date(milliseconds: row["observed_at"]), message: row["message"]),
                device: deviceID.map { DeliveryJob.Device(id: $0, fcmToken: row["fcm_token"], active: row["active"]) })
        }
    }

    /// Ends the waiting deliveries (pending, retry, or claimed and in flight) of the given
    /// devices as failed with `reason`, in the caller's transaction: called before a
    /// device is removed or its token moves to another user. An in-flight send's outcome
    /// is then dropped by `finish`'s fence.
    static func failWaiting(_ db: Database, deviceIDs: [Int64], reason: String, now: Date) throws {
        guard !deviceIDs.isEmpty else { return }
        let rows = try Row.fetchAll(
            db, sql: """
                SELECT id, attempts, status FROM deliveries
                WHERE device_id IN (SELECT value FROM json_each(?)) AND status IN ('pending', 'retry', 'sending')
                """, arguments: [JSONOutput.encode(deviceIDs)])
        for row in rows {
            // A claimed row's attempt is the one in flight; a waiting one's is the next.
            let attempt = (row["attempts"] as Int) + (row["status"] as String == "sending" ? 0 : 1)
            try db.cachedStatement(sql: """
                UPDATE deliveries SET status = 'failed', attempts = ?, lease_until = NULL, last_error = ?, updated_at = ? WHERE id = ?
                """).execute(arguments: [attempt, reason, now.milliseconds, row["id"] as Int64])
            try db.cachedStatement(sql: "INSERT INTO delivery_attempts (delivery_id, attempt, finished_at, outcome, error) VALUES (?, ?, ?, 'failed', ?) ON CONFLICT DO NOTHING")
                .execute(arguments: [row["id"] as Int64, attempt, now.milliseconds, reason])
        }
    }

    /// Which of these claimed jobs are still this run's to send: a device removed or
    /// registered by another user, a user removed, or a lease taken over since the claim
    /// ends the claim, and its send must not start. One read for many jobs.
    func stillClaimed(_ jobs: ArraySlice<DeliveryJob>) throws(StockwatchError) -> Set<Int64> {
        guard !jobs.isEmpty else { return [] }
        let attempts = Dictionary(jobs.map { ($0.deliveryID, $0.attempt) }) { a, _ in a }
        return try database.read { db in
            var held = Set<Int64>()
            for row in try Row.fetchAll(
                db, sql: "SELECT id, attempts FROM deliveries WHERE id IN (SELECT value FROM json_each(?)) AND status = 'sending'",
                arguments: [JSONOutput.encode(Array(attempts.keys))])
            where attempts[row["id"]] == row["attempts"] {
                held.insert(row["id"])
            }
            return held
        }
    }

    /// Writes the outcomes of finished sends in one transaction and returns each
    /// delivery's new state. An outcome whose claim was lost (lease ended and another run
    /// took the row) is dropped: that run decides.
    func record(_ outcomes: [(DeliveryJob, SendResult)], now: Date = Date(), random: inout some RandomNumberGenerator) async throws(StockwatchError) -> [DeliveryJSON] {
        let backoff = Backoff(baseSeconds: settings.backoffBaseSeconds, capSeconds: settings.backoffCapSeconds)
        var planned: [(job: DeliveryJob, result: SendResult, status: DeliveryStatus, next: Date)] = []
        for (job, result) in outcomes {
            switch result.kind {
            case .sent: planned.append((job, result, .sent, now))
            case .failed: planned.append((job, result, .failed, now))
            case .retry:
                if job.attempt >= settings.maxAttempts {
                    planned.append((job, result, .dead, now))
                } else {
                    let delay = backoff.delay(afterAttempt: job.attempt, retryAfter: result.retryAfter, using: &random)
                    planned.append((job, result, .retry, now.addingTimeInterval(delay)))
                }
            }
        }
        let plan = planned
        return try await database.writeAsync { db in
            var recorded: [DeliveryJSON] = []
            for item in plan {
                var error = item.result.error
                if item.status == .dead, let last = error { error = "gave up after \(item.job.attempt) attempts: \(last)" }
                guard try Self.finish(db, id: item.job.deliveryID, attempt: item.job.attempt, status: item.status, nextAttemptAt: item.next, error: error, now: now) else { continue }
                if item.result.deactivateDevice, let device = item.job.device {
                    try db.cachedStatement(sql: "UPDATE devices SET active = 0, deactivated_reason = ?, updated_at = ? WHERE id = ? AND active = 1")
                        .execute(arguments: [item.result.error, now.milliseconds, device.id])
                }
                recorded.append(DeliveryJSON(
                    id: item.job.deliveryID, notificationId: item.job.notification.id, channel: item.job.channel, target: item.job.target,
                    status: item.status, attempts: item.job.attempt, error: error))
            }
            return recorded
        }
    }

    /// Moves a claimed row to its outcome and keeps the attempt; false when the claim was lost.
    @discardableResult
    private static func finish(_ db: Database, id: Int64, attempt: Int, status: DeliveryStatus, nextAttemptAt: Date, error: String?, now: Date) throws -> Bool {
        try db.cachedStatement(sql: """
            UPDATE deliveries SET status = ?, next_attempt_at = ?, lease_until = NULL, last_error = ?, updated_at = ?
            WHERE id = ? AND status = 'sending' AND attempts = ?
            """
        ).execute(arguments: [status.rawValue, nextAttemptAt.milliseconds, error, now.milliseconds, id, attempt])
        guard db.changesCount > 0 else { return false }
        try db.cachedStatement(sql: "INSERT INTO delivery_attempts (delivery_id, attempt, finished_at, outcome, error) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .execute(arguments: [id, attempt, now.milliseconds, status.rawValue, error])
        return true
    }
}
