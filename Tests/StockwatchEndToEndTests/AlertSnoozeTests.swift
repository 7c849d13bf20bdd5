import Foundation
import Testing

/// Snooze from the app (a notification's button) and from the shell.
@Suite(.serialized) struct AlertSnoozeTests {
    @Test(arguments: BackendEndToEndTests.backends)
    func aSnoozeFromTheAppOrTheShellHoldsNotificationsUntilItEnds(_ backend: String) async throws {
        let sandbox = try Sandbox(backend: backend)
        let alice = try sandbox.addUser("alice"), bob = try sandbox.addUser("bob")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let created = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"AAPL","condition":{"kind":"above","value":100},"trigger":"every"}"#)
        let id = try #require(created.object?["id"] as? Int)
        #expect(created.object?.keys.contains("snoozed_until") == true && created.object?["snoozed_until"] is NSNull)

        let snoozed = try await server.request("POST", "/v1/alerts/\(id)/snooze", token: alice, body: #"{"seconds":3600}"#)
        #expect(snoozed.status == 200)
        try OpenAPI.validate(snoozed.body, path: "/v1/alerts/{id}/snooze", method: "post", status: 200)
        let until = try #require(snoozed.object?["snoozed_until"] as? String)
        let end = try #require(ISO8601DateFormatter().date(from: until))
        #expect(abs(end.timeIntervalSinceNow - 3600) < 60)

        // Judged, not notified, while snoozed.
        try sandbox.fetch([("AAPL", 150, Date())])
        #expect(try sandbox.run(["evaluate"]).status == 0)
        #expect(try await server.request("GET", "/v1/notifications", token: alice).array?.isEmpty == true)
        let list = try sandbox.run(["alert", "list"])
        #expect(list.stdout.contains("snoozed until"))

        // Another user's alert, a time in the past, both or neither key: refused, nothing changed.
        for (token, body, status) in [
            (bob, #"{"seconds":60}"#, 404), (alice, #"{"until":"2020-01-01T00:00:00Z"}"#, 422), (alice, #"{"seconds":0}"#, 422),
            (alice, #"{"seconds":60,"until":"2030-01-01"}"#, 422), (alice, "{}", 422), (alice, #"{"seconds":null}"#, 422),
        ] {
            let answer = try await server.request("POST", "/v1/alerts/\(id)/snooze", token: token, body: body)
            #expect(answer.status == status, "\(body)")
        }
        #expect(try await server.request("DELETE", "/v1/alerts/\(id)/snooze", token: bob).status == 404)
        #expect(try await server.request("GET", "/v1/alerts/\(id)", token: alice).object?["snoozed_until"] as? String == until)

        // Ended: the next quote notifies again.
        let woken = try await server.request("DELETE", "/v1/alerts/\(id)/snooze", token: alice)
        #expect(woken.status == 200 && woken.object?["snoozed_until"] is NSNull)
        try sandbox.fetch([("AAPL", 151, Date().addingTimeInterval(1))])
        #expect(try sandbox.run(["evaluate"]).status == 0)
        #expect(try await server.request("GET", "/v1/notifications", token: alice).array?.count == 1)

        // The shell: a duration or a date; the past and a malformed value exit 64 naming it.
        let shell = try sandbox.run(["alert", "snooze", "\(id)", "30m", "--json"])
        #expect(shell.status == 0)
        #expect((try shell.json() as? [String: Any])?["snoozed_until"] is String)
        for bad in ["2020-01-01", "soon", "400d"] {
            let refused = try sandbox.run(["alert", "snooze", "\(id)", bad])
            #expect(refused.status == 64, "\(bad)")
            #expect(refused.stderr.contains(bad) && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        }
        #expect(try sandbox.run(["alert", "unsnooze", "\(id)"]).status == 0)
        let shown = try sandbox.run(["alert", "show", "\(id)", "--json"])
        #expect((try shown.json() as? [String: Any])?["snoozed_until"] is NSNull)
        #expect(try sandbox.run(["alert", "snooze", "999999", "1h"]).status == 65)
    }

    /// `--active` and the API's `schedule`: kept, shown, and refused naming the value.
    @Test func aScheduleIsSetFromTheShellOrTheAppAndBadOnesChangeNothing() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice")
        let added = try sandbox.run(["alert", "add", "AAPL", "--above", "200", "--user", "alice", "--active", "Mon-Fri 09:30-16:00", "--json"])
        #expect(added.status == 0)
        #expect((try added.json() as? [String: Any])?["schedule"] as? String == "mon-fri 09:30-16:00")
        #expect(try sandbox.run(["alert", "list"]).stdout.contains("active mon-fri 09:30-16:00"))
        for bad in ["mon-fri 16:00-09:30", "weekdays 09:30-16:00", "mon-fri"] {
            let refused = try sandbox.run(["alert", "add", "AAPL", "--above", "200", "--active", bad])
            #expect(refused.status == 64, "\(bad)")
            #expect(refused.stderr.contains("--active") && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        }
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let created = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"MSFT","condition":{"kind":"above","value":1},"schedule":"sat,sun 10:00-14:00"}"#)
        #expect(created.status == 201 && created.object?["schedule"] as? String == "sat,sun 10:00-14:00")
        try OpenAPI.validate(created.body, path: "/v1/alerts", method: "post", status: 201)
        let refused = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"MSFT","condition":{"kind":"above","value":1},"schedule":"sat 14:00-10:00"}"#)
        #expect(refused.status == 422)
        #expect(try await server.request("GET", "/v1/alerts", token: alice).array?.count == 2)
    }
}
