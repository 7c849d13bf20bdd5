import Foundation
import Testing

/// A user's time zone and quiet hours: set by the admin (`user add/set`) or the app
/// (`PATCH /v1/me`), refused with a hint when wrong, and read by notify.
@Suite(.serialized) struct UserClockTests {
    @Test(arguments: BackendEndToEndTests.backends)
    func theAppAndTheAdminSetTheClockAndBadValuesChangeNothing(_ backend: String) async throws {
        let sandbox = try Sandbox(backend: backend)
        let alice = try sandbox.addUser("alice")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        let me = try await server.request("GET", "/v1/me", token: alice)
        #expect(me.status == 200)
        try OpenAPI.validate(me.body, path: "/v1/me", method: "get", status: 200)
        #expect(me.object?["name"] as? String == "alice" && me.object?["timezone"] as? String == "UTC" && me.object?["quiet_hours"] is NSNull)

        let set = try await server.request("PATCH", "/v1/me", token: alice, body: #"{"timezone":"Europe/Warsaw","quiet_hours":"22:00-07:00"}"#)
        #expect(set.status == 200)
        try OpenAPI.validate(set.body, path: "/v1/me", method: "patch", status: 200)
        #expect(set.object?["timezone"] as? String == "Europe/Warsaw" && set.object?["quiet_hours"] as? String == "22:00-07:00")

        for (body, culprit) in [
            (#"{"timezone":"europe/warsaw"}"#, "did you mean Europe/Warsaw"), (#"{"timezone":"Mars/Base"}"#, "Mars/Base"),
            (#"{"quiet_hours":"25:00-07:00"}"#, "25:00-07:00"), (#"{"quiet_hours":"07:00-07:00"}"#, "same time"), ("{}", "timezone or quiet_hours"),
            (#"{"tz":"UTC"}"#, "tz"),
        ] {
            let refused = try await server.request("PATCH", "/v1/me", token: alice, body: body)
            #expect(refused.status == 422, "\(body)")
            let message = (refused.object?["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains(culprit), "\(body): \(message)")
        }
        #expect(try await server.request("PATCH", "/v1/me", body: #"{"timezone":"UTC"}"#).status == 401)
        let unchanged = try await server.request("GET", "/v1/me", token: alice)
        #expect(unchanged.object?["timezone"] as? String == "Europe/Warsaw" && unchanged.object?["quiet_hours"] as? String == "22:00-07:00")

        // null ends the quiet hours; the zone stays.
        let off = try await server.request("PATCH", "/v1/me", token: alice, body: #"{"quiet_hours":null}"#)
        #expect(off.object?["quiet_hours"] is NSNull && off.object?["timezone"] as? String == "Europe/Warsaw")

        // The admin: user add and user set take the same values; a bad one exits 64 and
        // creates or changes nothing.
        #expect(try sandbox.run(["user", "add", "bob", "--timezone", "America/New_York", "--quiet", "23:30-06:00"]).status == 0)
        let badAdd = try sandbox.run(["user", "add", "carol", "--timezone", "Europe/Warszawa"])
        #expect(badAdd.status == 64 && badAdd.stderr.contains("Europe/Warszawa"))
        #expect(try sandbox.run(["user", "set", "bob", "--quiet", "off"]).status == 0)
        let badSet = try sandbox.run(["user", "set", "bob", "--quiet", "22:00"])
        #expect(badSet.status == 64 && badSet.stderr.contains("--quiet") && badSet.stderr.split(separator: "\n").count == 1)
        #expect(try sandbox.run(["user", "set", "nobody", "--quiet", "off"]).status == 65)
        let list = try sandbox.run(["user", "list", "--json"])
        let users = try #require(try list.json() as? [[String: Any]])
        #expect(users.map { $0["name"] as? String } == ["alice", "bob"])
        #expect(users.map { $0["timezone"] as? String } == ["Europe/Warsaw", "America/New_York"])
        #expect(users.allSatisfy { $0["quiet_hours"] is NSNull })
        let table = try sandbox.run(["user", "list"])
        #expect(table.stdout.contains("TIMEZONE") && table.stdout.contains("America/New_York"))
    }
}
