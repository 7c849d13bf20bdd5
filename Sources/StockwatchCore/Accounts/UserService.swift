import Foundation
import StockwatchModel
import StockwatchStore

/// Users own alerts and devices, and log in to `serve` with their API token.
public struct UserService: Sendable {
    public static let defaultUserName = UserRecord.defaultName
    let database: any AccountStore

    public init(database: any AccountStore) { self.database = database }

    /// Creates a user; the returned token is never stored or shown again.
    public func add(name: String, now: Date = Date()) throws(StockwatchError) -> NewUserJSON {
        guard Validation.isName(name) else {
            throw .invalidValue(option: "NAME", value: name, reason: "user names use letters, digits, '-', '_', '.' and '@' (at most 64)")
        }
        let token = APIToken.generate()
        return NewUserJSON(user: try database.addUser(name: name, tokenHash: APIToken.hash(token), now: now), token: token)
    }

    public func list() throws(StockwatchError) -> [UserJSON] { try database.users() }

    /// Removes the user with their alerts, devices and notifications.
    public func remove(name: String) throws(StockwatchError) { try database.removeUser(name: name) }
}
