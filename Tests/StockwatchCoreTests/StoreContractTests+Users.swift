import Foundation
import Testing
@testable import StockwatchModel
@testable import StockwatchStore

/// The contract for what keeps one user's data from another (issue 20) and for the app's
/// notification state (issue 17), on every backend.
extension StoreContractTests {
    /// A phone's waiting retry never reaches a phone that is not its user's: removing the
    /// phone ends it `failed` (kept in history), ids are never handed to the next phone,
    /// and a token moving to another user ends the previous owner's waiting deliveries.
    @Test(arguments: StoreContractTests.backends)
    func aRemovedOrMovedPhonesWaitingRetryEndsFailedAndNeverReachesAnotherUser(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            _ = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            let phone1 = try store.registerDevice(user: "alice", fcmToken: "tok-1", label: "alice's phone", limitPerUser: nil, now: now)
            let phone2 = try store.registerDevice(user: "alice", fcmToken: "tok-2", label: nil, limitPerUser: nil, now: now)
            _ = try store.addAlerts([spec("AAPL", .above(100), user: "alice", channels: ["phone"])], limitPerUser: nil, now: at(-60))
            _ = try store.addQuotes([quote("AAPL", 150, at: 0)], fetchedAt: now)
            _ = try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true)
            let claim = try await store.claimDeliveries(channels: ["phone"], fanOut: ["phone"], limit: 10, cutoff: now, leaseUntil: at(60), now: now)
            #expect(claim.jobs.map(\.device?.id) == [phone1.id, phone2.id])
            // Both sends fail once and wait for a retry at +30 s.
            _ = try await store.recordOutcomes(claim.jobs.map { outcome($0, .retry, next: at(30), error: "HTTP 503") }, now: at(1))

            // Removed: phone 2's retry ends failed with the reason, and stays in history.
            try store.removeDevice(id: phone2.id, ownerID: alice.id, now: at(2))
            // Moved: bob registers phone 1's token; alice's retry for it ends failed too.
            let bobsPhone = try store.registerDevice(user: "bob", fcmToken: "tok-1", label: nil, limitPerUser: nil, now: at(3))
            #expect(bobsPhone.label == nil)  // alice's label does not move with the token
            let bobsNewPhone = try store.registerDevice(user: "bob", fcmToken: "tok-3", label: nil, limitPerUser: nil, now: at(4))
            #expect(![phone1.id, phone2.id].contains(bobsNewPhone.id) && ![phone1.id, phone2.id].contains(bobsPhone.id))

            let deliveries = try #require(try store.notifications(NotificationQuery(userID: alice.id)).first?.deliveries)
            #expect(deliveries.map(\.status) == [.failed, .failed])
            #expect(Set(deliveries.compactMap(\.error)) == [DeliveryReason.deviceGone, DeliveryReason.deviceMoved])
            // At the retry time nothing of alice's is sent, to bob's phones or anywhere.
            let retry = try await store.claimDeliveries(channels: ["phone"], fanOut: ["phone"], limit: 10, cutoff: at(30), leaseUntil: at(90), now: at(30))
            #expect(retry.jobs.isEmpty && retry.failed.isEmpty)

            // User ids are not reused either, even the highest one's.
            try store.removeUser(name: "bob")
            let carol = try store.addUser(name: "carol", tokenHash: hash(3), now: at(5))
            #expect(carol.id > alice.id + 1)
        }
    }

    /// Read and dismissed, per user: forward only, all or nothing for ids that are not
    /// the user's, counted, filtered, and told to the stream in commit order.
    @Test(arguments: StoreContractTests.backends)
    func notificationStateMovesForwardForItsUserOnly(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let alice = try store.addUser(name: "alice", tokenHash: hash(1), now: now)
            let bob = try store.addUser(name: "bob", tokenHash: hash(2), now: now)
            let phone = try store.registerDevice(user: "alice", fcmToken: "tok-1", label: nil, limitPerUser: nil, now: now)
            let bobsPhone = try store.registerDevice(user: "bob", fcmToken: "tok-2", label: nil, limitPerUser: nil, now: now)
            _ = try store.addAlerts(
                [spec("AAPL", .above(100), user: "alice"), spec("AAPL", .above(110), user: "alice"), spec("AAPL", .above(120), user: "alice"),
                 spec("AAPL", .above(100), user: "bob")], limitPerUser: nil, now: at(-60))
            _ = try store.addQuotes([quote("AAPL", 150, at: 0)], fetchedAt: now)
            _ = try store.evaluate(now: now, maxAgeSeconds: 3600, prefilter: true)
            let mine = try store.notifications(NotificationQuery(userID: alice.id)).map(\.id).sorted()
            let bobs = try store.notifications(NotificationQuery(userID: bob.id)).map(\.id)
            #expect(mine.count == 3 && bobs.count == 1)
            #expect(try store.notifications(NotificationQuery(userID: alice.id)).allSatisfy { $0.state == .unread && $0.stateChangedAt == nil })
            #expect(try store.unreadCount(userID: alice.id) == 3)
            let start = try store.streamStart()

            // Another user's notification or device: not found, and nothing changes.
            #expect(throws: StockwatchError.notFound(kind: "notification", id: String(bobs[0]))) {
                try store.setNotificationState(userID: alice.id, .ids([mine[0], bobs[0]]), to: .read, deviceID: nil, now: at(1))
            }
            #expect(throws: StockwatchError.notFound(kind: "device", id: String(bobsPhone.id))) {
                try store.setNotificationState(userID: alice.id, .ids([mine[0]]), to: .read, deviceID: bobsPhone.id, now: at(1))
            }
            #expect(try store.unreadCount(userID: alice.id) == 3)

            #expect(try store.setNotificationState(userID: alice.id, .ids([mine[0], mine[0]]), to: .read, deviceID: phone.id, now: at(2)) == [mine[0]])
            #expect(try store.setNotificationState(userID: alice.id, .ids([mine[0]]), to: .read, deviceID: nil, now: at(3)) == [])  // already read
            let read = try store.notifications(NotificationQuery(userID: alice.id, state: .read))
            #expect(read.map(\.id) == [mine[0]])
            #expect(read.first?.stateChangedAt == at(2) && read.first?.stateDeviceId == phone.id)
            #expect(try store.unreadCount(userID: alice.id) == 2)
            #expect(try store.unreadCount(userID: bob.id) == 1)

            // Up to an id: the read one is dismissed too; dismissed is never made merely read.
            #expect(try store.setNotificationState(userID: alice.id, .upTo(mine[1]), to: .dismissed, deviceID: nil, now: at(4)) == [mine[0], mine[1]])
            #expect(try store.setNotificationState(userID: alice.id, .ids([mine[1], mine[2]]), to: .read, deviceID: nil, now: at(5)) == [mine[2]])
            #expect(try store.notifications(NotificationQuery(userID: alice.id, state: .dismissed)).map(\.id).sorted() == [mine[0], mine[1]])
            #expect(try store.notifications(NotificationQuery(userID: alice.id, state: .unread)).isEmpty)
            #expect(try store.notifications(NotificationQuery(userID: bob.id)).map(\.state) == [.unread])  // bob's untouched by up_to

            // The stream tells each change, to its user, in order.
            let batch = try store.streamBatch(after: start, limit: 100)
            #expect(batch.stateChanges == [
                NotificationStateChange(userID: alice.id, ids: [mine[0]], state: .read),
                NotificationStateChange(userID: alice.id, ids: [mine[0], mine[1]], state: .dismissed),
                NotificationStateChange(userID: alice.id, ids: [mine[2]], state: .read),
            ])
            #expect(try store.streamBatch(after: batch.position, limit: 100).stateChanges.isEmpty)

            // A removed device leaves the state, without naming the device.
            try store.removeDevice(id: phone.id, ownerID: alice.id, now: at(6))
            #expect(try store.notifications(NotificationQuery(userID: alice.id)).allSatisfy { $0.stateDeviceId == nil && $0.state != .unread })
        }
    }
}
