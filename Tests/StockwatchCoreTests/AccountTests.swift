import Foundation
import GRDB
import Testing
@testable import StockwatchCore
@testable import StockwatchServer
@testable import StockwatchStore

@Suite struct AccountTests {
    @Test func tokensAreShownOnceAndStoredHashed() throws {
        let store = try TemporaryStore()
        let users = UserService(database: store.database)
        let created = try users.add(name: "alice")
        #expect(created.token.hasPrefix("sw_") && created.token.count == 67)
        let stored = try store.database.read { try String.fetchOne($0, sql: "SELECT token_hash FROM users") }
        #expect(stored == APIToken.hash(created.token))
        #expect(stored != created.token)
        #expect(expectError { _ = try users.add(name: "alice") } == .alreadyExists(kind: "user", id: "alice"))
        #expect(expectError { _ = try users.add(name: "al ice") }?.exitStatus == .usage)
    }

    @Test func removingAUserCascades() throws {
        let store = try TemporaryStore()
        let users = UserService(database: store.database)
        _ = try users.add(name: "bob")
        var input = AlertInput(symbol: "AAPL")
        input.above = "1"
        input.user = "bob"
        _ = try AlertService(database: store.database, config: Config()).add(input)
        _ = try DeviceService(database: store.database).add(user: "bob", fcmToken: "tok", label: nil)
        #expect(try users.list().first?.alerts == 1)
        try users.remove(name: "bob")
        #expect(try store.database.read { try AlertRecord.fetchCount($0) + DeviceRecord.fetchCount($0) } == 0)
        #expect(expectError { try users.remove(name: "bob") } == .notFound(kind: "user", id: "bob"))
    }

    @Test func knownDeviceTokenIsRefreshed() throws {
        let store = try TemporaryStore()
        let devices = DeviceService(database: store.database)
        _ = try UserService(database: store.database).add(name: "carol")
        // the same user registering again (a token moving to another user becomes a new
        // device: UserIsolationTests)
        let first = try devices.add(user: "carol", fcmToken: "tok-1", label: "old")
        try store.database.write { db in try db.execute(sql: "UPDATE devices SET active = 0, deactivated_reason = 'UNREGISTERED'") }
        let again = try devices.add(user: "carol", fcmToken: "tok-1", label: "new")
        #expect(again.id == first.id)
        #expect(again.user == "carol" && again.label == "new" && again.active && again.deactivatedReason == nil)
        #expect(try devices.list(user: "carol").count == 1)
        #expect(expectError { _ = try devices.add(user: nil, fcmToken: "two words", label: nil) }?.exitStatus == .usage)
        try devices.remove(id: first.id)
        #expect(expectError { try devices.remove(id: first.id) } == .notFound(kind: "device", id: String(first.id)))
    }
}
