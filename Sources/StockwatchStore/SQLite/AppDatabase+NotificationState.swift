import Foundation
import GRDB
import StockwatchModel

extension AppDatabase: NotificationStateStore {
    public func setNotificationState(userID: Int64, _ selection: NotificationSelection, to state: NotificationState, deviceID: Int64?, now: Date) throws(StockwatchError) -> [Int64] {
        let from = state.movesFrom.map(\.rawValue)
        return try write { db in
            if let deviceID, try DeviceRecord.filter(key: deviceID).owned(by: userID).fetchCount(db) == 0 {
                throw StockwatchError.notFound(kind: "device", id: String(deviceID))
            }
            var request = NotificationRecord.owned(by: userID).filter(from.contains(Column("state")))
            switch selection {
            case .ids(let ids):
                let wanted = Set(ids)
                let found = try Set(Int64.fetchAll(db, NotificationRecord.owned(by: userID).filter(wanted.contains(Column("id"))).select(Column("id"))))
                if let missing = wanted.subtracting(found).min() { throw StockwatchError.notFound(kind: "notification", id: String(missing)) }
                request = request.filter(wanted.contains(Column("id")))
            case .upTo(let last):
                request = request.filter(Column("id") <= last)
            }
            let changed = try Int64.fetchAll(db, request.select(Column("id")).order(Column("id")))
            guard !changed.isEmpty else { return [] }
            try db.execute(
                sql: "UPDATE notifications SET state = ?, state_changed_at = ?, state_device_id = ? WHERE id IN (SELECT value FROM json_each(?))",
                arguments: [state.rawValue, now.milliseconds, deviceID, JSONOutput.encode(changed)])
            try db.execute(
                sql: "INSERT INTO notification_state_changes (user_id, state, notification_ids, changed_at) VALUES (?, ?, ?, ?)",
                arguments: [userID, state.rawValue, JSONOutput.encode(changed), now.milliseconds])
            return changed
        }
    }

    public func unreadCount(userID: Int64) throws(StockwatchError) -> Int {
        try read { db in try NotificationRecord.owned(by: userID).filter(Column("state") == NotificationState.unread.rawValue).fetchCount(db) }
    }

    public func unreadCounts(users: Set<String>) async throws(StockwatchError) -> [String: Int] {
        guard !users.isEmpty else { return [:] }
        let names = JSONOutput.encode(users.sorted())
        return try read { db in
            var counts = Dictionary(uniqueKeysWithValues: users.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: """
                SELECT u.name, count(n.id) AS unread FROM users u JOIN notifications n ON n.user_id = u.id AND n.state = 'unread'
                WHERE u.name IN (SELECT value FROM json_each(?)) GROUP BY u.name
                """, arguments: [names]) {
                counts[row["name"]] = row["unread"]
            }
            return counts
        }
    }

    /// A day of state changes is kept for `serve` instances catching up; fetch prunes.
    static func pruneStateChanges(_ db: Database, now: Date) throws {
        try db.execute(sql: "DELETE FROM notification_state_changes WHERE changed_at < ?", arguments: [now.milliseconds - 86_400_000])
    }
}
