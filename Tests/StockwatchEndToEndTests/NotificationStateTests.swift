import Foundation
import Testing

/// The app's half of a notification through `serve` and the CLI: read and dismissed,
/// the unread count, the state filter, and a second phone told over the stream.
@Suite(.serialized) struct NotificationStateTests {
    @Test(arguments: BackendEndToEndTests.backends)
    func aReadOnOnePhoneReachesTheUsersOtherPhonesAndHistory(_ backend: String) async throws {
        let sandbox = try Sandbox(backend: backend)
        let alice = try sandbox.addUser("alice"), bob = try sandbox.addUser("bob")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        for (token, above) in [(alice, 100), (alice, 110), (bob, 100)] {
            let created = try await server.request("POST", "/v1/alerts", token: token, body: #"{"symbol":"AAPL","condition":{"kind":"above","value":\#(above)}}"#)
            #expect(created.status == 201)
        }
        let device = try #require(try await server.request("POST", "/v1/devices", token: alice, body: #"{"fcm_token":"tok-alice"}"#).object?["id"] as? Int)
        try sandbox.fetch([("AAPL", 150, Date())])
        #expect(try sandbox.run(["evaluate"]).status == 0)
        let unread = try await server.request("GET", "/v1/notifications?state=unread", token: alice)
        try OpenAPI.validate(unread.body, path: "/v1/notifications", method: "get", status: 200)
        let mine = try #require(unread.array).compactMap { $0["id"] as? Int }.sorted()
        let bobs = try #require(try await server.request("GET", "/v1/notifications", token: bob).array).compactMap { $0["id"] as? Int }
        #expect(mine.count == 2 && bobs.count == 1)
        #expect(try await server.request("GET", "/v1/notifications/unread_count", token: alice).object?["unread"] as? Int == 2)

        let phone1 = try await StreamClient.connect(server, token: alice)
        let phone2 = try await StreamClient.connect(server, token: alice)
        let bobsPhone = try await StreamClient.connect(server, token: bob)

        // Another user's id: 404, and nothing changes.
        let foreign = try await server.request("POST", "/v1/notifications/read", token: alice, body: #"{"ids":[\#(mine[0]),\#(bobs[0])]}"#)
        #expect(foreign.status == 404)
        try OpenAPI.validate(foreign.body, path: "/v1/notifications/read", method: "post", status: 404)
        #expect(try await server.request("GET", "/v1/notifications/unread_count", token: alice).object?["unread"] as? Int == 2)

        let read = try await server.request("POST", "/v1/notifications/read", token: alice, body: #"{"ids":[\#(mine[0])],"device_id":\#(device)}"#)
        #expect(read.status == 200)
        try OpenAPI.validate(read.body, path: "/v1/notifications/read", method: "post", status: 200)
        #expect(read.object?["ids"] as? [Int] == [mine[0]] && read.object?["state"] as? String == "read" && read.object?["unread"] as? Int == 1)
        let changed = Date()
        for phone in [phone1, phone2] {
            let message = try await phone.next { $0["type"] as? String == "notification_state" }
            #expect(message["ids"] as? [Int] == [mine[0]] && message["state"] as? String == "read")
            try OpenAPI.validate(JSONSerialization.data(withJSONObject: message.object), schema: "StreamNotificationState")
        }
        #expect(Date().timeIntervalSince(changed) < 1)

        let dismissed = try await server.request("POST", "/v1/notifications/dismiss", token: alice, body: #"{"up_to":\#(mine[1])}"#)
        #expect(dismissed.object?["ids"] as? [Int] == mine && dismissed.object?["unread"] as? Int == 0)
        _ = try await phone2.next { $0["type"] as? String == "notification_state" && $0["state"] as? String == "dismissed" }
        #expect(await bobsPhone.received.allSatisfy { $0["type"] as? String != "notification_state" })
        let count = try await server.request("GET", "/v1/notifications/unread_count", token: bob)
        try OpenAPI.validate(count.body, path: "/v1/notifications/unread_count", method: "get", status: 200)
        #expect(count.object?["unread"] as? Int == 1)

        // The admin's view: history shows and filters the state.
        let history = try sandbox.run(["history", "--state", "dismissed", "--json"])
        #expect(history.status == 0)
        let rows = try #require(try history.json() as? [[String: Any]])
        #expect(rows.compactMap { $0["id"] as? Int }.sorted() == mine)
        #expect(rows.allSatisfy { $0["state"] as? String == "dismissed" && $0["state_changed_at"] is String })
        let table = try sandbox.run(["history", "--state", "unread"])
        #expect(table.stdout.contains("STATE") && table.stdout.contains("unread") && table.stdout.contains("bob"))
        #expect(!table.stdout.contains("alice"))

        // Bad input: the status, the culprit, nothing changed.
        for (path, body, status, culprit) in [
            ("/v1/notifications/read", #"{"ids":[]}"#, 422, "ids"),
            ("/v1/notifications/read", #"{"ids":[1],"up_to":2}"#, 422, "either ids or up_to"),
            ("/v1/notifications/dismiss", #"{"upto":2}"#, 422, "upto"),
            ("/v1/notifications/read", #"{"ids":[\#(mine[0])],"device_id":999999}"#, 404, "999999"),
        ] {
            let answer = try await server.request("POST", path, token: bob, body: body)
            #expect(answer.status == status, "\(body)")
            #expect(((answer.object?["error"] as? [String: Any])?["message"] as? String)?.contains(culprit) == true, "\(body)")
        }
        #expect(try await server.request("GET", "/v1/notifications?state=seen", token: alice).status == 422)
        #expect(try await server.request("POST", "/v1/notifications/read", body: #"{"ids":[1]}"#).status == 401)
        #expect(try await server.request("GET", "/v1/notifications/unread_count", token: bob).object?["unread"] as? Int == 1)
        let bad = try sandbox.run(["history", "--state", "seen"])
        #expect(bad.status == 64 && bad.stderr.contains("--state") && bad.stderr.split(separator: "\n").count == 1)

        await phone1.close()
        await phone2.close()
        await bobsPhone.close()
    }
}
