import Foundation
import GRDB
import StockwatchModel

extension Evaluation {
    /// Only what changed: alerts whose state moved, the firings with their deliveries, and
    /// the watermarks of symbols with newer quotes.
    mutating func write(_ db: Database, rounds: StartRounds) throws {
        // The state alone: a firing's time is its notification's (`AlertRecord.lastFiredAt`).
        // A `once` alert's end (the only change to `fired`) goes aside, in id order: one
        // narrow row instead of a page of the alerts and of an index (migration v23).
        let ends = endsAside ? alertChanges.filter { $0.state == .fired }.map(\.id).sorted() : []
        try RowBatches(head: "INSERT INTO alert_ends (alert_id)", row: "(?)", parameters: 1).run(db, count: ends.count) { statement, offset, index in
            statement.bind(offset + 1, ends[index])
        }
        // A `rearm` alert that fires is kept firing aside, one narrow row, its own row left
        // armed; it re-arms by losing that row (migration v25).
        var firing: [(id: Int64, symbol: String)] = []
        let updateState = try RawStatement(db, "UPDATE alerts SET state = ? WHERE id = ?")
        let rearmAside = try RawStatement(db, "DELETE FROM alert_firing WHERE alert_id = ?")
        for change in alertChanges where !(endsAside && change.state == .fired) {
            if change.fromAside {
                rearmAside.bind(1, change.id)
                try rearmAside.execute()
                if change.state == .armed { continue }
            } else if firingAside, change.state == .firing, !change.derived {
                firing.append((change.id, change.symbol))
                continue
            }
            updateState.bind(1, change.state.rawValue)
            updateState.bind(2, change.id)
            try updateState.execute()
        }
        firing.sort { $0.id < $1.id }
        try RowBatches(head: "INSERT INTO alert_firing (alert_id, symbol)", row: "(?, ?)", parameters: 2).run(db, count: firing.count) { statement, offset, index in
            statement.bind(offset + 1, firing[index].id)
            statement.bind(offset + 2, firing[index].symbol)
        }
        // See `restartedAlerts`: a round above every other, before the rounds are passed.
        if !restartedAlerts.isEmpty {
            let restart = try RawStatement(db, "UPDATE alerts SET start_round = (\(AppDatabase.nextStartRoundSQL)), start_at = ? WHERE id = ?")
            for (id, start) in restartedAlerts {
                restart.bind(1, start)
                restart.bind(2, id)
                try restart.execute()
            }
        }
        // A new alert judged for the first time without a change (most of them) is not
        // written at all: the rounds it belongs to are passed at once (migration v15).
        if rounds.anyNew {
            let waiting = try RawStatement(db, "UPDATE alerts SET start_round = ? WHERE id = ?")
            // A set: the seeks may return an alert that `settleStarters` found waiting too.
            for id in Set(waitingStarters) {
                waiting.bind(1, rounds.highest + 1)
                waiting.bind(2, id)
                try waiting.execute()
            }
            try db.execute(
                sql: "UPDATE evaluation_starts SET judged_through = ?, last_alert_id = (SELECT COALESCE(max(id), 0) FROM alerts)",
                arguments: [rounds.highest])
        }
        // A moved peak or low: its narrow row beside the alert (see migration v12). In key
        // order, 100 to a statement: half the trailing rules of a tick may move theirs.
        let trails = trailChanges.sorted { $0.id < $1.id }
        try RowBatches(
            head: "INSERT INTO alert_trails (alert_id, trailing_from)", row: "(?, ?)", parameters: 2,
            tail: "ON CONFLICT (alert_id) DO UPDATE SET trailing_from = excluded.trailing_from"
        ).run(db, count: trails.count) { statement, offset, index in
            statement.bind(offset + 1, trails[index].id)
            statement.bind(offset + 2, trails[index].trailingFrom)
        }

        // With the last price judged as current: the derived levels' state (migration v19).
        // In key order, as the batch's ranges: the upserts walk the table's pages in turn.
        let marks = inKeyOrder(watermarks()) { $0.symbol }
        try RowBatches(
            head: "INSERT INTO evaluation_progress (symbol, observed_at, judged_price)", row: "(?, ?, ?)", parameters: 3,
            tail: "ON CONFLICT (symbol) DO UPDATE SET observed_at = excluded.observed_at, judged_price = excluded.judged_price"
        ).run(db, count: marks.count) { statement, offset, index in
            statement.bind(offset + 1, marks[index].symbol)
            statement.bind(offset + 2, marks[index].observedAt)
            statement.bind(offset + 3, marks[index].judged)
        }

        guard !firings.isEmpty else { return }
        // Ids are drawn in the firings' order; a pair already notified is skipped, never twice.
        var ids = FiringIDs(count: firings.count)
        // Each firing bound in place: a copy of it (`firings[index]`) retained and released
        // its strings, 5% of these writes at the near shape.
        try firings.withUnsafeBufferPointer { firings in
            try RowBatches(
                head: "INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at)",
                row: "(?, ?, ?, ?, ?, ?, ?)", parameters: 7,
                tail: "ON CONFLICT (alert_id, observed_at) DO NOTHING RETURNING id, alert_id, observed_at"
            ).run(db, count: firings.count) { statement, offset, index in
                statement.bind(offset + 1, firings[index].alert.id)
                statement.bind(offset + 2, firings[index].alert.userId)
                statement.bind(offset + 3, firings[index].alert.symbol)
                statement.bind(offset + 4, firings[index].price)
                statement.bind(offset + 5, firings[index].time)
                statement.bind(offset + 6, firings[index].message)
                statement.bind(offset + 7, now)
                ids.bound = index + 1
            } read: { row in
                ids.returned(row.int64(0), alert: row.int64(1), time: row.int64(2), of: firings)
            }
        }
        ids.resolve(firings)
        let names = detailed ? try AppDatabase.userNames(db) : [:]
        var deliveries: [(notification: Int64, channel: String)] = []
        deliveries.reserveCapacity(firings.count)
        for (index, firing) in firings.enumerated() {
            let alert = firing.alert
            guard let notificationID = ids.ids[index] else { continue }
            let channels = try channelList(alert.channels)
            for channel in channels { deliveries.append((notificationID, channel)) }
            guard detailed else { continue }
            report.notifications.append(
                EvaluateReport.Notification(
                    id: notificationID, alertId: alert.id, user: names[alert.userId] ?? "?", symbol: alert.symbol,
                    price: firing.price, observedAt: Date(milliseconds: firing.time), message: firing.message, channels: channels))
        }
        try RowBatches(
            head: "INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at)",
            row: "(?, ?, 'pending', 0, ?, ?, ?)", parameters: 5
        ).run(db, count: deliveries.count) { statement, offset, index in
            statement.bind(offset + 1, deliveries[index].notification)
            statement.bind(offset + 2, deliveries[index].channel)
            for time in offset + 3...offset + 5 { statement.bind(time, now) }
        }
    }
}
