import Foundation
import StockwatchModel
import StockwatchStore

/// Users own alerts and devices, and log in to `serve` with their API token.
public struct UserService: Sendable {
    public static let defaultUserName = UserRecord.defaultName
    let database: any AccountStore

    public init(database: any AccountStore) { self.database = database }

    /// Creates a user; the returned token is never stored or shown again. A time zone
    /// or quiet hours are checked before anything is written.
    public func add(name: String, settings: SettingsChange = SettingsChange(), now: Date = Date()) throws(StockwatchError) -> NewUserJSON {
        guard Validation.isName(name) else {
            throw .invalidValue(option: "NAME", value: name, reason: "user names use letters, digits, '-', '_', '.' and '@' (at most 64)")
        }
        try settings.check()
        let token = APIToken.generate()
        var user = try database.addUser(name: name, tokenHash: APIToken.hash(token), now: now)
        if !settings.isEmpty { user = try change(userID: user.id, settings) }
        return NewUserJSON(user: user, token: token)
    }

    /// What to change of a user's clock: nil leaves a setting as it is; `quietHours` of
    /// `.some(nil)` removes the quiet hours. `options` name the fields in errors.
    public struct SettingsChange: Sendable {
        public var timezone: String?
        public var quietHours: String??
        public var options: (timezone: String, quietHours: String)

        public init(timezone: String? = nil, quietHours: String?? = nil, options: (timezone: String, quietHours: String) = ("--timezone", "--quiet")) {
            self.timezone = timezone
            self.quietHours = quietHours
            self.options = options
        }

        var isEmpty: Bool { timezone == nil && quietHours == nil }

        func check() throws(StockwatchError) {
            if let timezone { _ = try UserTimeZone.parse(timezone, option: options.timezone) }
            if case let .some(.some(text)) = quietHours { _ = try QuietHours.parse(text, option: options.quietHours) }
        }
    }

    /// Changes the user's time zone and quiet hours, checked first (a bad value changes
    /// nothing).
    public func change(userID: Int64, _ settings: SettingsChange, now: Date = Date()) throws(StockwatchError) -> UserJSON {
        try settings.check()
        let current = try database.user(id: userID)
        var quiet = current.quietHours
        if let asked = settings.quietHours {
            quiet = nil
            if let text = asked { quiet = try QuietHours.parse(text, option: settings.options.quietHours).description }
        }
        return try database.saveUserSettings(userID: userID, timezone: settings.timezone ?? current.timezone, quietHours: quiet, now: now)
    }

    /// The user named, for the admin's commands.
    public func find(name: String) throws(StockwatchError) -> UserJSON {
        guard let user = try database.users().first(where: { $0.name == name }) else { throw .notFound(kind: "user", id: name) }
        return user
    }

    public func user(id: Int64) throws(StockwatchError) -> UserJSON { try database.user(id: id) }

    public func list() throws(StockwatchError) -> [UserJSON] { try database.users() }

    /// Removes the user with their alerts, devices and notifications.
    public func remove(name: String) throws(StockwatchError) { try database.removeUser(name: name) }
}
