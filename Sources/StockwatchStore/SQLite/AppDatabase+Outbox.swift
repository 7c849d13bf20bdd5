import Foundation
import GRDB
import StockwatchModel

extension AppDatabase: OutboxStore {
    public func channelsWithDueDeliveries(now: Date) throws(StockwatchError) -> Set<String> {
        let nowMS = now.milliseconds
        return Set(try read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT channel FROM deliveries INDEXED BY deliveries_due WHERE \(Self.waitingSQL) AND next_attempt_at <= ?
                    UNION SELECT DISTINCT channel FROM deliveries INDEXED BY deliveries_leased WHERE status = 'sending' AND lease_until <= ?
                    """, arguments: [nowMS, nowMS])
        })
    }

    public func nextDeliveryDue() throws(StockwatchError) -> Date? {
        try read { db in
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT min(due) FROM (
                        SELECT min(next_attempt_at) AS due FROM deliveries INDEXED BY deliveries_due WHERE \(Self.waitingSQL) AND status = 'pending'
                        UNION ALL SELECT min(next_attempt_at) FROM deliveries INDEXED BY deliveries_due WHERE \(Self.waitingSQL) AND status = 'retry'
                        UNION ALL SELECT min(lease_until) FROM deliveries INDEXED BY deliveries_leased WHERE status = 'sending')
                    """)
        }.map(Date.init(milliseconds:))
    }

    /// One file, one writer: there is no one to hear a signal from, so a follower polls.
    public func watchDeliveries(_ wake: @escaping @Sendable () -> Void) async throws(StockwatchError) -> (any StoreWatch)? { nil }

    /// One IMMEDIATE transaction: the batch is picked, the user's devices looked up for the
    /// FCM rows not yet given a device, then one `UPDATE ... RETURNING` claims the batch and
    /// gives each of those rows its first device in the same write (a second `UPDATE` per row
    /// to set the device was a tenth of notify's CPU: a row and its index entries written
    /// twice).
    public func claimDeliveries(
        channels: Set<String>, fanOut: Set<String>, limit: Int, cutoff: Date, leaseUntil: Date, now: Date
    ) async throws(StockwatchError) -> (jobs: [DeliveryJob], failed: [DeliveryJSON]) {
        let channelList = JSONOutput.encode(channels.sorted())
        let fanOutList = JSONOutput.encode(fanOut.sorted())
        let lease = leaseUntil.milliseconds
        return try await writeAsync { db in
            // Through SQLite's C API, by position: at thousands of sends a second, GRDB's
            // arguments and rows per statement were a third of the claim's time.
            let pick = try RawStatement(db, """
                SELECT id, notification_id, target IS NULL AND channel IN (SELECT value FROM json_each(?4)) FROM (
                    SELECT id, notification_id, channel, target FROM deliveries INDEXED BY deliveries_due
                        WHERE \(Self.waitingSQL) AND next_attempt_at <= ?1
                        AND channel IN (SELECT value FROM json_each(?3))
                    UNION ALL
                    SELECT id, notification_id, channel, target FROM deliveries INDEXED BY deliveries_leased
                        WHERE status = 'sending' AND lease_until <= ?2
                        AND channel IN (SELECT value FROM json_each(?3))
                    LIMIT ?5)
                """)
            pick.bind(1, cutoff.milliseconds)
            pick.bind(2, now.milliseconds)
            pick.bind(3, channelList)
            pick.bind(4, fanOutList)
            pick.bind(5, Int64(limit))
            var picked: [(id: Int64, notificationID: Int64, needsDevice: Bool)] = []
            while try pick.step() { picked.append((pick.int64(0), pick.int64(1), pick.int64(2) != 0)) }
            pick.reset()
            guard !picked.isEmpty else { return ([], []) }

            // The row becomes its user's first device's (no delete: the commonest user has
            // one phone), and the others get rows of their own after the claim. The devices
            // of the whole batch in one statement: one a row was 10,000 statements for
            // 10,000 sends.
            var devicesOf: [Int64: [Int64]] = [:]
            let needing = picked.filter(\.needsDevice).map(\.notificationID)
            if !needing.isEmpty {
                let devices = try RawStatement(db, """
                    SELECT n.id, d.id FROM notifications n JOIN devices d ON d.user_id = n.user_id
                    WHERE n.id IN (SELECT value FROM json_each(?)) AND d.active = 1 ORDER BY n.id, d.id
                    """)
                devices.bind(1, JSONText.integers(needing))
                while try devices.step() { devicesOf[devices.int64(0), default: []].append(devices.int64(1)) }
                devices.reset()
            }
            // Written as bytes: String concatenation was 4% of the claim's instructions.
            var batch = JSONText(capacity: picked.count * 32 + 2)
            batch.raw("[")
            var otherDevices: [Int64: ArraySlice<Int64>] = [:]
            var noDevice: Set<Int64> = []
            for (index, row) in picked.enumerated() {
                var first: Int64?
                if row.needsDevice {
                    let devices = devicesOf[row.notificationID] ?? []
                    first = devices.first
                    if first == nil { noDevice.insert(row.id) }
                    if devices.count > 1 { otherDevices[row.id] = devices.dropFirst() }
                }
                // [id] or [id, first device, its target]
                batch.raw(index == 0 ? "[" : ",[")
                batch.integer(row.id)
                if let first {
                    batch.raw(",")
                    batch.integer(first)
                    batch.raw(",")
                    batch.string(DeliveryRecord.deviceTarget(first))
                }
                batch.raw("]")
            }
            batch.raw("]")

            let claim = try RawStatement(db, """
                UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = ?1, updated_at = ?2,
                    device_id = coalesce(c.value ->> 1, deliveries.device_id),
                    target = coalesce(c.value ->> 2, deliveries.target)
                FROM json_each(?3) AS c WHERE deliveries.id = c.value ->> 0
                RETURNING id, notification_id, channel, target, attempts
                """)
            claim.bind(1, lease)
            claim.bind(2, now.milliseconds)
            claim.bind(3, String(decoding: batch.bytes, as: UTF8.self))
            var claimed: [(id: Int64, notificationID: Int64, channel: String, target: String?, attempt: Int)] = []
            while try claim.step() {
                claimed.append((claim.int64(0), claim.int64(1), claim.string(2), claim.optionalString(3), Int(claim.int64(4))))
            }
            claim.reset()

            var ids: [Int64] = []
            var failed: [DeliveryJSON] = []
            let finisher = try Finisher(db)
            let forOtherDevice = try RawStatement(db, """
                INSERT INTO deliveries (notification_id, channel, target, device_id, status, attempts, next_attempt_at, lease_until, created_at, updated_at)
                VALUES (?1, ?2, ?3, ?4, 'sending', 1, ?5, ?6, ?5, ?5)
                """)
            for row in claimed {
                if noDevice.contains(row.id) {
                    let error = DeliveryReason.noDevice
                    try finisher.finish(id: row.id, attempt: row.attempt, status: .failed, nextAttemptAt: now, error: error, now: now)
                    failed.append(DeliveryJSON(id: row.id, notificationId: row.notificationID, channel: row.channel, target: nil, status: .failed, attempts: row.attempt, error: error))
                    continue
                }
                ids.append(row.id)
                for device in otherDevices[row.id] ?? [] {
                    forOtherDevice.bind(1, row.notificationID)
                    forOtherDevice.bind(2, row.channel)
                    forOtherDevice.bind(3, DeliveryRecord.deviceTarget(device))
                    forOtherDevice.bind(4, device)
                    forOtherDevice.bind(5, now.milliseconds)
                    forOtherDevice.bind(6, lease)
                    try forOtherDevice.execute()
                    ids.append(db.lastInsertedRowID)
                }
            }
            return (try Self.jobs(db, ids: ids), failed)
        }
    }

    /// The claimed rows joined with their notification, user and device. A device is
    /// found only while it still belongs to the notification's user, so a delivery can
    /// never reach another user's phone, whatever happened to the device meanwhile.
    private static func jobs(_ db: Database, ids: [Int64]) throws -> [DeliveryJob] {
        guard !ids.isEmpty else { return [] }
        let rows = try RawStatement(db, """
            SELECT d.id, d.channel, d.target, d.attempts, n.id, n.alert_id, u.name, n.symbol, n.price, n.observed_at, n.message,
                   dv.id, dv.fcm_token, dv.active, (d.attempts = 1 AND d.last_error IS NOT NULL)
            FROM deliveries d JOIN notifications n ON n.id = d.notification_id JOIN users u ON u.id = n.user_id
            LEFT JOIN devices dv ON dv.id = d.device_id AND dv.user_id = n.user_id
            WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.id
            """)
        rows.bind(1, JSONText.integers(ids))
        defer { rows.reset() }
        var jobs: [DeliveryJob] = []
        jobs.reserveCapacity(ids.count)
        while try rows.step() {
            let deviceID = rows.optionalInt64(11)
            jobs.append(DeliveryJob(
                deliveryID: rows.int64(0), attempt: Int(rows.int64(3)), channel: rows.string(1), target: rows.optionalString(2),
                notification: NotificationPayload(
                    id: rows.int64(4), alertId: rows.optionalInt64(5), user: rows.string(6), symbol: rows.string(7), price: rows.double(8),
                    observedAt: Date(milliseconds: rows.int64(9)), message: rows.string(10)),
                device: deviceID.map { DeliveryJob.Device(id: $0, fcmToken: rows.string(12), active: rows.int64(13) != 0) },
                heldForQuietHours: rows.int64(14) != 0))
        }
        return jobs
    }

    public func renewClaims(_ claims: [Int64: Int], leaseUntil: Date, now: Date) async throws(StockwatchError) -> Set<Int64> {
        guard !claims.isEmpty else { return [] }
        // [[id, attempt], ...] by hand, read through the C API: a run whose sends are slow
        // renews every waiting claim each second, and JSONEncoder with GRDB's generic fetch
        // were a third of a renewal's instructions.
        var pairs = JSONText(capacity: claims.count * 20 + 2)
        pairs.raw("[")
        for (index, (id, attempt)) in claims.enumerated() {
            pairs.raw(index == 0 ? "[" : ",[")
            pairs.integer(id)
            pairs.raw(",")
            pairs.integer(Int64(attempt))
            pairs.raw("]")
        }
        pairs.raw("]")
        let list = String(decoding: pairs.bytes, as: UTF8.self)
        return try await writeAsync { db in
            let renew = try RawStatement(db, """
                UPDATE deliveries SET lease_until = ?, updated_at = ?
                WHERE status = 'sending'
                  AND (id, attempts) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))
                RETURNING id
                """)
            renew.bind(1, leaseUntil.milliseconds)
            renew.bind(2, now.milliseconds)
            renew.bind(3, list)
            defer { renew.reset() }
            var held = Set<Int64>(minimumCapacity: claims.count)
            while try renew.step() { held.insert(renew.int64(0)) }
            return held
        }
    }

    public func recordOutcomes(_ outcomes: [DeliveryOutcome], now: Date) async throws(StockwatchError) -> [DeliveryJSON] {
        try await writeAsync { db in
            var recorded: [DeliveryJSON] = []
            let finisher = try Finisher(db)
            for outcome in outcomes {
                let job = outcome.job
                guard try finisher.finish(id: job.deliveryID, attempt: job.attempt, status: outcome.status, nextAttemptAt: outcome.nextAttemptAt, error: outcome.error, now: now) else { continue }
                if outcome.deactivateDevice, let device = job.device {
                    try db.cachedStatement(sql: "UPDATE devices SET active = 0, deactivated_reason = ?, updated_at = ? WHERE id = ? AND active = 1")
                        .execute(arguments: [outcome.error, now.milliseconds, device.id])
                }
                recorded.append(DeliveryJSON(
                    id: job.deliveryID, notificationId: job.notification.id, channel: job.channel, target: job.target,
                    status: outcome.status, attempts: job.attempt, error: outcome.error))
            }
            return recorded
        }
    }

    public func holdClaims(_ claims: [Int64: Int], until: Date, reason: String, now: Date) async throws(StockwatchError) -> Int {
        guard !claims.isEmpty else { return 0 }
        return try await writeAsync { db in
            var held = 0
            for (id, attempt) in claims.sorted(by: { $0.key < $1.key }) {
                try db.cachedStatement(sql: """
                    UPDATE deliveries SET status = 'pending', attempts = attempts - 1, next_attempt_at = ?, lease_until = NULL, last_error = ?, updated_at = ?
                    WHERE id = ? AND status = 'sending' AND attempts = ?
                    """).execute(arguments: [until.milliseconds, reason, now.milliseconds, id, attempt])
                held += db.changesCount
            }
            return held
        }
    }

    /// Moves a claimed row to its outcome and keeps the attempt, through SQLite's C API
    /// (one per outcome, thousands a second); prepared once per transaction.
    struct Finisher {
        let update: RawStatement
        let attempts: RawStatement
        let db: Database

        init(_ db: Database) throws {
            self.db = db
            update = try RawStatement(db, """
                UPDATE deliveries SET status = ?, next_attempt_at = ?, lease_until = NULL, last_error = ?, updated_at = ?
                WHERE id = ? AND status = 'sending' AND attempts = ?
                """)
            attempts = try RawStatement(db, "INSERT INTO delivery_attempts (delivery_id, attempt, finished_at, outcome, error) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
        }

        /// False when the claim was lost (its lease ended and another run took the row).
        @discardableResult
        func finish(id: Int64, attempt: Int, status: DeliveryStatus, nextAttemptAt: Date, error: String?, now: Date) throws -> Bool {
            update.bind(1, status.rawValue)
            update.bind(2, nextAttemptAt.milliseconds)
            update.bind(3, error)
            update.bind(4, now.milliseconds)
            update.bind(5, id)
            update.bind(6, Int64(attempt))
            try update.execute()
            guard db.changesCount > 0 else { return false }
            attempts.bind(1, id)
            attempts.bind(2, Int64(attempt))
            attempts.bind(3, now.milliseconds)
            attempts.bind(4, status.rawValue)
            attempts.bind(5, error)
            try attempts.execute()
            return true
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
            var record = DeliveryAttemptRecord(deliveryId: row["id"], attempt: attempt, finishedAt: now, outcome: .failed, error: reason)
            try record.insert(db, onConflict: .ignore)
        }
    }

    public func notifications(_ query: NotificationQuery) throws(StockwatchError) -> [NotificationJSON] {
        try read { db in
            var request = NotificationRecord.order(Column("created_at").desc, Column("id").desc).limit(query.limit)
            if let beforeID = query.beforeID { request = request.filter(Column("id") < beforeID).order(Column("id").desc) }
            if let symbol = query.symbol {
                // Through the alerts of the symbol (an alert keeps its symbol) and the
                // notifications whose alert was removed: both seeks in
                // `notifications_alert_observed`, there being no index by symbol (v21).
                request = request.filter(sql: """
                    (alert_id IN (SELECT id FROM alerts WHERE symbol = ?) OR (alert_id IS NULL AND symbol = ?))
                    """, arguments: [symbol, symbol])
            }
            if let alertID = query.alertID { request = request.filter(Column("alert_id") == alertID) }
            if let since = query.since { request = request.filter(Column("created_at") >= since.milliseconds) }
            if let userID = query.userID { request = request.owned(by: userID) }
            if let state = query.state { request = request.filter(Column("state") == state.rawValue) }
            return try Self.json(request.fetchAll(db), in: db)
        }
    }

    static func json(_ notifications: [NotificationRecord], in db: Database) throws -> [NotificationJSON] {
        let ids = notifications.compactMap(\.id)
        let deliveries = try DeliveryRecord.filter(ids.contains(Column("notification_id"))).order(Column("id")).fetchAll(db)
        let byNotification = Dictionary(grouping: deliveries, by: \.notificationId)
        let names = try userNames(db)
        return notifications.map { n in
            NotificationJSON(
                id: n.id!, alertId: n.alertId, user: names[n.userId] ?? "?", symbol: n.symbol, price: n.price,
                observedAt: n.observedAt, message: n.message, createdAt: n.createdAt,
                deliveries: (byNotification[n.id!] ?? []).map {
                    DeliveryJSON(id: $0.id!, notificationId: $0.notificationId, channel: $0.channel, target: $0.target, status: $0.status, attempts: $0.attempts, error: $0.lastError)
                },
                state: n.state, stateChangedAt: n.stateChangedAt, stateDeviceId: n.stateDeviceId)
        }
    }
}

extension DeliveryRecord {
    /// The label of a fanned-out delivery's device, as history shows it.
    public static func deviceTarget(_ id: Int64) -> String { "device:\(id)" }
}

extension AppDatabase: DataStore {
    public var location: String { path }

    public func runLock(name: String, holder: String) throws(StockwatchError) -> any RunLease {
        try RunLock(path: "\(path).\(name)", holder: holder)
    }
}
