import Foundation
import Testing

/// What one app user may do to the others through the API: per-user limits (422), pages
/// with a Link header, a write rate (429), and a token taken over without its past.
@Suite(.serialized) struct ServeLimitsTests {
    @Test func perUserLimitsPagesAndTheWriteRate() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice"), bob = try sandbox.addUser("bob")
        sandbox.writeConfig("[serve]\nmax_alerts_per_user = 3\nmax_devices_per_user = 2\nwrites_per_minute = 8\n")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }

        for n in 1...3 {
            let created = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"AAPL","condition":{"kind":"above","value":\#(n)}}"#)
            #expect(created.status == 201)
        }
        let over = try await server.request("POST", "/v1/alerts", token: alice, body: #"{"symbol":"AAPL","condition":{"kind":"above","value":9}}"#)
        #expect(over.status == 422)
        #expect(over.errorCode == "limit_reached")
        try OpenAPI.validate(over.body, path: "/v1/alerts", method: "post", status: 422)
        #expect(try sandbox.count("alerts") == 3)
        // bob has a limit of his own
        #expect(try await server.request("POST", "/v1/alerts", token: bob, body: #"{"symbol":"MSFT","condition":{"kind":"above","value":1}}"#).status == 201)

        // pages: limit and the cursor from the Link header
        let page1 = try await server.request("GET", "/v1/alerts?limit=2", token: alice)
        #expect(page1.array?.count == 2)
        let link = try #require(page1.headers.first(name: "Link"))
        #expect(link.hasSuffix(#">; rel="next""#))
        let next = String(link.dropFirst().prefix { $0 != ">" })
        let page2 = try await server.request("GET", next, token: alice)
        #expect(page2.status == 200)
        #expect(page2.array?.count == 1)
        #expect(page2.headers.first(name: "Link") == nil)
        let ids = ((page1.array ?? []) + (page2.array ?? [])).compactMap { $0["id"] as? Int }
        #expect(ids.count == 3 && ids == ids.sorted())
        for bad in ["limit=0", "limit=501", "after=-1", "after=x"] {
            let answer = try await server.request("GET", "/v1/alerts?\(bad)", token: alice)
            #expect(answer.status == 422, "\(bad)")
        }
        #expect(try await server.request("GET", "/v1/devices?limit=1", token: alice).status == 200)
        #expect(try await server.request("GET", "/v1/notifications?limit=1&before=10", token: alice).status == 200)

        // devices: two, then 422; the same token again is a refresh, not a new device
        for token in ["fcm-1", "fcm-2", "fcm-2"] {
            #expect(try await server.request("POST", "/v1/devices", token: alice, body: #"{"fcm_token":"\#(token)"}"#).status == 200)
        }
        let thirdDevice = try await server.request("POST", "/v1/devices", token: alice, body: #"{"fcm_token":"fcm-3"}"#)
        #expect(thirdDevice.status == 422 && thirdDevice.errorCode == "limit_reached")

        // alice has made 8 writes (3 alerts, the refused one, 4 devices): the bucket is
        // empty, and refills one write per 7.5 s, so a few more writes meet a 429.
        var limited: ServeProcess.Answer?
        for _ in 0..<10 {
            let answer = try await server.request("POST", "/v1/devices", token: alice, body: #"{"fcm_token":"fcm-3"}"#)
            if answer.status == 429 { limited = answer; break }
            #expect(answer.status == 422)
        }
        let refused = try #require(limited)
        #expect(refused.errorCode == "too_many_writes")
        #expect(Int(refused.headers.first(name: "Retry-After") ?? "") ?? 0 >= 1)
        try OpenAPI.validate(refused.body, path: "/v1/devices", method: "post", status: 429)
        #expect(try sandbox.count("alerts") == 4)
        // reads are not limited, and bob is not slowed down by alice
        #expect(try await server.request("GET", "/v1/alerts", token: alice).status == 200)
        #expect(try await server.request("POST", "/v1/devices", token: bob, body: #"{"fcm_token":"fcm-bob"}"#).status == 200)
    }

    @Test func aTokenRegisteredByAnotherUserDoesNotRevealThePreviousLabel() async throws {
        let sandbox = try Sandbox()
        let alice = try sandbox.addUser("alice"), bob = try sandbox.addUser("bob")
        let server = try ServeProcess(sandbox)
        defer { server.stop() }
        let alices = try await server.request("POST", "/v1/devices", token: alice, body: #"{"fcm_token":"same-phone","label":"Alice's iPhone"}"#)
        let bobs = try await server.request("POST", "/v1/devices", token: bob, body: #"{"fcm_token":"same-phone"}"#)
        #expect(bobs.status == 200)
        #expect(bobs.object?["label"] is NSNull)
        #expect(bobs.object?["user"] as? String == "bob")
        #expect(bobs.object?["id"] as? Int != alices.object?["id"] as? Int)
        #expect(try await server.request("GET", "/v1/devices", token: alice).array?.count == 0)
        // and alice cannot delete bob's device by its old id
        let oldID = try #require(alices.object?["id"] as? Int)
        #expect(try await server.request("DELETE", "/v1/devices/\(oldID)", token: alice).status == 404)
        #expect(try sandbox.count("devices") == 1)
    }
}
