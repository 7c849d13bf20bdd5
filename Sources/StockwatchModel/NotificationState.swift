import Foundation

/// Where a notification stands for its user, as the app reports it. A notification is
/// born unread; reading or dismissing it only moves it forward (a dismissed one is not
/// made merely read again), so two phones reporting in any order agree.
public enum NotificationState: String, Codable, Sendable, CaseIterable {
    case unread, read, dismissed

    /// A state as typed (`history --state`, the API's `?state=`).
    public static func parse(_ text: String, option: String) throws(StockwatchError) -> NotificationState {
        guard let state = NotificationState(rawValue: text) else { throw .invalidValue(option: option, value: text, reason: "one of unread, read, dismissed") }
        return state
    }

    /// The states a notification may be in for a change to `self` to move it.
    public var movesFrom: [NotificationState] {
        switch self {
        case .unread: []
        case .read: [.unread]
        case .dismissed: [.unread, .read]
        }
    }
}

/// Which of a user's notifications a state change names: these ids, or every one up to
/// and including an id (the app's "mark all read").
public enum NotificationSelection: Sendable, Equatable {
    case ids([Int64])
    case upTo(Int64)
}

/// One state change as the stream tells the user's other connections.
public struct NotificationStateChange: Sendable, Equatable {
    public var userID: Int64
    public var ids: [Int64]
    public var state: NotificationState

    public init(userID: Int64, ids: [Int64], state: NotificationState) {
        self.userID = userID
        self.ids = ids
        self.state = state
    }
}
