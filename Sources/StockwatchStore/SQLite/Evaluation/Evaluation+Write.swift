import Foundation
import GRDB
import StockwatchModel

extension Evaluation {
    /// Only what changed: alerts whose state moved, the firings with their deliveries, and
    /// the watermarks of symbols with newer quotes.
    mutating func write(_ db: Database, rounds: StartRounds) throws {
        // The state alone: a firing's time is its notification's (`AlertRecord.lastFiredAt`).
        let updateState = try RawStatement(db, "UPDATE alerts SET state = ? WHERE id = ?")
        for change in alertChanges {
            updateState.bind(1, change.state.rawValue)
            updateState.bind(2, change.id)
            try updateState.execute()
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
        // A moved peak or low: its narrow row beside the alert (see migration v12).
        let saveTrail = try RawStatement(db, """
            INSERT INTO alert_trails (alert_id, trailing_from) VALUES (?, ?)
            ON CONFLICT (alert_id) DO UPDATE SET trailing_from = excluded.trailing_from
            """)
        for (id, trail) in trailChanges {
            saveTrail.bind(1, id)
            saveTrail.bind(2, trail)
            try saveTrail.execute()
        }

        // With the last price judged as current: the derived levels' state (migration v19).
        let saveProgress = try RawStatement(db, """
            INSERT INTO evaluation_progress (symbol, observed_at, judged_price) VALUES (?, ?, ?)
            ON CONFLICT (symbol) DO UPDATE SET observed_at = excluded.observed_at, judged_price = excluded.judged_price
            """)
        for (symbol, newest, judged) in watermarks() {
            saveProgress.bind(1, symbol)
            saveProgress.bind(2, newest)
            saveProgress.bind(3, judged)
            try saveProgress.execute()
        }

        guard !firings.isEmpty else { return }
        let insertNotification = try RawStatement(db, """
            INSERT INTO notifications (alert_id, user_id, symbol, price, observed_at, message, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id, observed_at) DO NOTHING
            """)
        let insertDelivery = try RawStatement(db, """
            INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at)
            VALUES (?, ?, 'pending', 0, ?, ?, ?)
            """)
        let names = detailed ? try AppDatabase.userNames(db) : [:]
        for firing in firings {
            let alert = firing.alert
            insertNotification.bind(1, alert.id)
            insertNotification.bind(2, alert.userId)
            insertNotification.bind(3, alert.symbol)
            insertNotification.bind(4, firing.price)
            insertNotification.bind(5, firing.time)
            insertNotification.bind(6, firing.message)
            insertNotification.bind(7, now)
            try insertNotification.execute()
            guard db.changesCount > 0 else { continue }  // already notified: never twice
            let notificationID = db.lastInsertedRowID
            let channels = try channelList(alert.channels)
            for channel in channels {
                insertDelivery.bind(1, notificationID)
                insertDelivery.bind(2, channel)
                insertDelivery.bind(3, now)
                insertDelivery.bind(4, now)
                insertDelivery.bind(5, now)
                try insertDelivery.execute()
            }
            guard detailed else { continue }
            report.notifications.append(
                EvaluateReport.Notification(
                    id: notificationID, alertId: alert.id, user: names[alert.userId] ?? "?", symbol: alert.symbol,
                    price: firing.price, observedAt: Date(milliseconds: firing.time), message: firing.message, channels: channels))
        }
    }
}
