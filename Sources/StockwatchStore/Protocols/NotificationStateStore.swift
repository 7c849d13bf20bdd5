import Foundation
import StockwatchModel

/// The app's half of a notification: unread, read or dismissed, per user.
public protocol NotificationStateStore: Sendable {
    /// Moves the user's selected notifications to `state` (forward only, see
    /// `NotificationState.movesFrom`), noting `now` and the device, in one transaction
    /// that also tells the stream. Returns the ids that changed, ascending. An id that is
    /// not one of this user's notifications, or a device that is not theirs, is
    /// `notFound` and changes nothing.
    func setNotificationState(userID: Int64, _ selection: NotificationSelection, to state: NotificationState, deviceID: Int64?, now: Date) throws(StockwatchError) -> [Int64]
    /// How many of the user's notifications are unread.
    func unreadCount(userID: Int64) throws(StockwatchError) -> Int
    /// The same for several users at once, by name (the iOS badge of a batch of pushes);
    /// a user with none unread is 0.
    func unreadCounts(users: Set<String>) async throws(StockwatchError) -> [String: Int]
}
