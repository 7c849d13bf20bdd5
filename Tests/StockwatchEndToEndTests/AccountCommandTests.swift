import Crypto
import Foundation
import GRDB
import Testing

@Suite struct AccountCommandTests {
    @Test func userAddPrintsTokenOnceAndStoresItsHash() throws {
        let sandbox = try Sandbox()
        let added = try sandbox.run(["user", "add", "alice"])
        #expect(added.status == 0)
        let token = added.stdout.trimmingCharacters(in: .newlines)
        #expect(token.hasPrefix("sw_"))
        let stored = try DatabaseQueue(path: sandbox.db).read { try String.fetchOne($0, sql: "SELECT token_hash FROM users WHERE name = 'alice'") }
        #expect(stored == SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined())
        #expect(!(try sandbox.run(["user", "list", "--json"]).stdout.contains(token)))

        let json = try #require(try sandbox.run(["user", "add", "bob", "--json"]).json() as? [String: Any])
        #expect((json["token"] as? String)?.hasPrefix("sw_") == true)
        #expect((json["user"] as? [String: Any])?["name"] as? String == "bob")
    }

    /// A token on argv is visible to every user in ps: it can come from a file or stdin.
    @Test func deviceTokenFromFileOrStdin() throws {
        let sandbox = try Sandbox()
        let file = sandbox.write("token", "fcm-from-file\n")
        #expect(try sandbox.run(["device", "add", "--fcm-token-file", file]).stdout == "1\n")
        #expect(try sandbox.run(["device", "add", "--fcm-token-file", "-"], stdin: "fcm-from-stdin\n").stdout == "2\n")
        let tokens = try DatabaseQueue(path: sandbox.db).read { try String.fetchAll($0, sql: "SELECT fcm_token FROM devices ORDER BY id") }
        #expect(tokens == ["fcm-from-file", "fcm-from-stdin"])

        let neither = try sandbox.run(["device", "add"])
        #expect(neither.status == 64)
        #expect(neither.stderr == "stockwatch: error: give the token with --fcm-token-file PATH (or - for stdin) or --fcm-token TOKEN\n")
        #expect(try sandbox.run(["device", "add", "--fcm-token", "a", "--fcm-token-file", file]).status == 64)
        let emptyFile = sandbox.write("empty", "\n")
        let empty = try sandbox.run(["device", "add", "--fcm-token-file", emptyFile])
        #expect(empty.status == 65)
        #expect(empty.stderr == "stockwatch: error: \(emptyFile): does not hold one FCM token (one word of at most 4096 printable ASCII characters)\n")
        let huge = try sandbox.run(["device", "add", "--fcm-token-file", "/dev/zero"])
        #expect(huge.status == 65)
        #expect(huge.stderr == "stockwatch: error: /dev/zero: longer than 8192 bytes\n")
        #expect(try sandbox.run(["device", "add", "--fcm-token-file", sandbox.folder + "/missing"]).status == 65)
        #expect(try DatabaseQueue(path: sandbox.db).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM devices") } == 2)
    }

    @Test func usersDevicesAndCascadingRemoval() throws {
        let sandbox = try Sandbox()
        try sandbox.run(["user", "add", "alice"])
        #expect(try sandbox.run(["device", "add", "--user", "alice", "--fcm-token", "fcm-token-1", "--label", "Pixel"]).stdout == "1\n")
        #expect(try sandbox.run(["device", "add", "--user", "alice", "--fcm-token", "fcm-token-1", "--label", "Pixel 9"]).stdout == "1\n")
        try sandbox.run(["device", "add", "--fcm-token", "fcm-token-2"])
        try sandbox.run(["alert", "add", "AAPL", "--above", "1", "--user", "alice"])

        let devices = try #require(try sandbox.run(["device", "list", "--user", "alice", "--json"]).json() as? [[String: Any]])
        #expect(devices.count == 1)
        #expect(devices[0]["label"] as? String == "Pixel 9")
        #expect(devices[0]["active"] as? Bool == true)
        let users = try #require(try sandbox.run(["user", "list", "--json"]).json() as? [[String: Any]])
        #expect(users.map { $0["name"] as? String } == ["alice", "default"])
        #expect(users[0]["alerts"] as? Int == 1 && users[0]["devices"] as? Int == 1)
        #expect(try sandbox.run(["user", "list"]).stdout.contains("alice"))
        #expect(try sandbox.run(["device", "list"]).stdout.contains("Pixel 9"))

        let removed = try sandbox.run(["user", "remove", "alice", "--yes"])
        #expect(removed.status == 0 && removed.stdout.isEmpty)
        #expect(try sandbox.count("alerts") == 0)
        #expect(try sandbox.count("devices") == 1)
        #expect(try sandbox.run(["device", "remove", "2", "--yes", "-v"]).stdout == "removed device 2\n")

        // Every remove command reports what it removed as a list, for scripts.
        try sandbox.run(["user", "add", "bob"])
        let device = try sandbox.run(["device", "add", "--user", "bob", "--fcm-token", "fcm-token-3"]).stdout.trimmingCharacters(in: .newlines)
        #expect(try sandbox.run(["device", "remove", device, "--yes", "--json"]).stdout == #"{"removed":[\#(device)]}"# + "\n")
        #expect(try sandbox.run(["user", "remove", "bob", "--yes", "--json"]).stdout == #"{"removed":["bob"]}"# + "\n")
        let alert = try sandbox.run(["alert", "add", "MSFT", "--above", "1"]).stdout.trimmingCharacters(in: .newlines)
        #expect(try sandbox.run(["alert", "remove", alert, "--yes", "--json"]).stdout == #"{"removed":[\#(alert)]}"# + "\n")
    }

    @Test func historyIsEmptyButWellFormed() throws {
        let sandbox = try Sandbox()
        #expect(try sandbox.run(["history", "--json"]).stdout == "[]\n")
        #expect(try sandbox.run(["history", "--prices", "--symbol", "aapl", "--since", "7d", "--json"]).stdout == "[]\n")
        let table = try sandbox.run(["history"])
        #expect(table.status == 0 && table.stdout.hasPrefix("ID"))

        // A stored quote and notification show up, newest first.
        try DatabaseQueue(path: sandbox.db).write { db in
            try db.execute(sql: """
                INSERT INTO users (id, name, token_hash, created_at) VALUES (1, 'u', '\(String(repeating: "0", count: 64))', 0);
                INSERT INTO quotes (id, symbol, price, provider, observed_at, fetched_at) VALUES (1, 'AAPL', 201.35, 'finnhub', 1795600000000, 1795600000000);
                INSERT INTO notifications (id, user_id, symbol, price, observed_at, message, created_at)
                    VALUES (7, 1, 'AAPL', 201.35, 1795600000000, 'AAPL crossed above 200.00 at 201.35', 1795600001000);
                INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, last_error, created_at, updated_at)
                    VALUES (7, 'stdout', 'retry', 1, 0, 'boom', 0, 0);
                """)
        }
        let prices = try #require(try sandbox.run(["history", "--prices", "--json"]).json() as? [[String: Any]])
        #expect(prices.first?["price"] as? Double == 201.35)
        #expect(prices.first?["observed_at"] as? String == "2026-11-25T09:46:40Z")
        let notifications = try #require(try sandbox.run(["history", "--symbol", "AAPL", "--json"]).json() as? [[String: Any]])
        #expect(notifications.first?["id"] as? Int == 7)
        let delivery = try #require((notifications.first?["deliveries"] as? [[String: Any]])?.first)
        #expect(delivery["status"] as? String == "retry" && delivery["error"] as? String == "boom")
        #expect(try sandbox.run(["history"]).stdout.contains("stdout:retry"))
    }
}
