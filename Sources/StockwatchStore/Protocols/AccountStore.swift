import Foundation
import StockwatchModel

/// Users, who own alerts and devices and log in to `serve`, and their phones.
public protocol AccountStore: Sendable {
    /// `alreadyExists` when the name is taken. Only the token's hash is given and kept.
    func addUser(name: String, tokenHash: String, now: Date) throws(StockwatchError) -> UserJSON
    /// By name, with how many alerts and devices each has.
    func users() throws(StockwatchError) -> [UserJSON]
    /// One user by id, as `users()` lists them; `notFound` when there is none.
    func user(id: Int64) throws(StockwatchError) -> UserJSON
    /// Sets the user's time zone (an IANA name) and quiet hours (`22:00-07:00`, nil for
    /// none), both already checked, and makes what quiet hours held due again at `now`
    /// (the next notify holds it again if it is still quiet); returns the user.
    func saveUserSettings(userID: Int64, timezone: String, quietHours: String?, now: Date) throws(StockwatchError) -> UserJSON
    /// The users who have quiet hours, by name, with their time zone: notify holds their
    /// pushes while it is quiet on their clock.
    func usersWithQuietHours() throws(StockwatchError) -> [(name: String, timezone: String, quietHours: String)]
    /// Removes the user with everything they own; `notFound` when there is none.
    func removeUser(name: String) throws(StockwatchError)
    /// The user a token hash logs in (serve's authentication), with the stored hash.
    func user(tokenHash: String) throws(StockwatchError) -> (id: Int64, name: String, tokenHash: String)?
    /// Every user's token hash, by user id: serve closes the streams of removed users.
    func tokenHashes() throws(StockwatchError) -> [Int64: String]

    /// Registers a token for `user` (nil: the default user, created on first use), or
    /// refreshes it when this user has it already. A token another user had becomes a new
    /// device: the previous owner's waiting deliveries to it end failed and neither its id
    /// nor its label carries over. With `limitPerUser`, a new device of a user who has
    /// that many is `limitReached`.
    func registerDevice(user: String?, fcmToken: String, label: String?, limitPerUser: Int?, now: Date) throws(StockwatchError) -> DeviceJSON
    /// All devices (or one user's), by id; a page with `afterID` and `limit`.
    func devices(user: String?, afterID: Int64?, limit: Int?) throws(StockwatchError) -> [DeviceJSON]
    /// Removes a device and ends its waiting deliveries as failed (kept in history). With
    /// `ownerID`, another user's device is `notFound`.
    func removeDevice(id: Int64, ownerID: Int64?, now: Date) throws(StockwatchError)
}
