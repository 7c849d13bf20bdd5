import Foundation
import PostgresNIO
import StockwatchModel

extension PostgresStore: NotificationStateStore {
    public func setNotificationState(userID: Int64, _ selection: NotificationSelection, to state: NotificationState, deviceID: Int64?, now: Date) throws(StockwatchError) -> [Int64] {
        let from = state.movesFrom.map(\.rawValue)
        return try write { db in
            if let deviceID, try await db.value("SELECT id FROM devices WHERE id = \(deviceID) AND user_id = \(userID)", Int64.self) == nil {
                throw StockwatchError.notFound(kind: "device", id: String(deviceID))
            }
            var ids: [Int64]? = nil, upTo: Int64? = nil
            switch selection {
            case .ids(let wanted):
                let unique = Array(Set(wanted))
                let found = Set(try await db.values("SELECT id FROM notifications WHERE id = ANY(\(unique)) AND user_id = \(userID)", Int64.self))
                if let missing = Set(unique).subtracting(found).min() { throw StockwatchError.notFound(kind: "notification", id: String(missing)) }
                ids = unique
            case .upTo(let last):
                upTo = last
            }
            let changed = try await db.values("""
                UPDATE notifications SET state = \(state.rawValue), state_changed_at = \(now.milliseconds), state_device_id = \(deviceID)
                WHERE user_id = \(userID) AND state = ANY(\(from)) AND (\(ids)::BIGINT[] IS NULL OR id = ANY(\(ids)))
                  AND (\(upTo)::BIGINT IS NULL OR id <= \(upTo))
                RETURNING id
                """, Int64.self).sorted()
            guard !changed.isEmpty else { return [] }
            let change = try await db.value("""
                INSERT INTO notification_state_changes (user_id, state, notification_ids, changed_at)
                VALUES (\(userID), \(state.rawValue), \(changed), \(now.milliseconds)) RETURNING id
                """, Int64.self)!
            try await Self.logForStream(db, stateChanges: [change], now: now)
            return changed
        }
    }

    public func unreadCounts(users: Set<String>) async throws(StockwatchError) -> [String: Int] {
        guard !users.isEmpty else { return [:] }
        let names = users.sorted()
        return try await transaction { db in
            var counts = Dictionary(uniqueKeysWithValues: names.map { ($0, 0) })
            for (name, unread) in try await db.rows("""
                SELECT u.name, count(n.id)::BIGINT FROM users u JOIN notifications n ON n.user_id = u.id AND n.state = 'unread'
                WHERE u.name = ANY(\(names)) GROUP BY u.name
                """, (String, Int64).self) {
                counts[name] = Int(unread)
            }
            return counts
        }
    }

    public func unreadCount(userID: Int64) throws(StockwatchError) -> Int {
        try read { db in
            Int(try await db.value("SELECT count(*)::BIGINT FROM notifications WHERE user_id = \(userID) AND state = 'unread'", Int64.self) ?? 0)
        }
    }
}
