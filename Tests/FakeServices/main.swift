// stockwatch-fakes: FakeFCM (and optionally FakeWebhookReceiver) as a process, for shell benchmarks
// and reliability tests.
//
//   stockwatch-fakes --service-account-out PATH [--webhook-secret-out PATH] [--fail-every N]
//                    [--project-id ID] [--token-lifetime SECONDS] [--ignore-stdin]
//   stockwatch-fakes --self-test      (checks the fakes themselves; exit 0 when all pass)
//   stockwatch-fakes --post-floor ACCOUNT_JSON COUNT [CONCURRENCY]   (PostFloor.swift)
//   stockwatch-fakes --post-lean PORT CA_FILE COUNT CONNECTIONS BODY_FILE   (PostLean.swift)
//   stockwatch-fakes --post-lean-h2 PORT CA_FILE COUNT CONNECTIONS STREAMS BODY_FILE   (PostLeanH2.swift)
//
// Prints one JSON line {"fcm":"http://127.0.0.1:P","webhook":"http://127.0.0.1:Q/hook"} once ready,
// then serves until stdin reaches EOF (not watched when stdin is /dev/null or with --ignore-stdin),
// SIGTERM or SIGINT. GET <fcm>/stats answers counters as JSON, GET <fcm>/delivered every accepted
// message (FCM per device token and notification id, webhooks per webhook-id) with its count.

import Dispatch
import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct Options {
    var serviceAccountOut: String?
    var webhookSecretOut: String?
    var failEvery: Int?
    var projectID = "demo-project"
    var tokenLifetime = 3599
    var ignoreStdin = false
}

func fail(_ message: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("stockwatch-fakes: \(message)\n".utf8))
    exit(code)
}

func parseOptions(_ arguments: [String]) -> Options {
    var options = Options()
    var i = 0
    func value(_ name: String, inline: String?) -> String {
        if let inline { return inline }
        i += 1
        guard i < arguments.count else { fail("\(name) needs a value") }
        return arguments[i]
    }
    while i < arguments.count {
        let argument = arguments[i]
        var name = argument
        var inline: String?
        if let eq = argument.firstIndex(of: "="), argument.hasPrefix("--") {
            name = String(argument[..<eq])
            inline = String(argument[argument.index(after: eq)...])
        }
        switch name {
        case "--service-account-out": options.serviceAccountOut = value(name, inline: inline)
        case "--webhook-secret-out": options.webhookSecretOut = value(name, inline: inline)
        case "--project-id": options.projectID = value(name, inline: inline)
        case "--fail-every":
            guard let n = Int(value(name, inline: inline)), n > 0 else { fail("--fail-every needs a positive integer") }
            options.failEvery = n
        case "--token-lifetime":
            guard let n = Int(value(name, inline: inline)), n > 0 else { fail("--token-lifetime needs a positive integer") }
            options.tokenLifetime = n
        case "--ignore-stdin": options.ignoreStdin = true
        case "-h", "--help":
            print("usage: stockwatch-fakes --service-account-out PATH [--webhook-secret-out PATH] [--fail-every N] [--project-id ID] [--token-lifetime SECONDS] [--ignore-stdin]")
            exit(0)
        default: fail("unknown argument \(argument)")
        }
        i += 1
    }
    if options.serviceAccountOut == nil { fail("--service-account-out PATH is required") }
    return options
}

/// Counts sends for --fail-every.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
}

/// Resumes the main task once, on the first of: stdin EOF, SIGTERM, SIGINT.
final class Shutdown: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<String, Never>?
    private var reason: String?
    private var sources: [any DispatchSourceSignal] = []

    func trigger(_ why: String) {
        let c: CheckedContinuation<String, Never>? = lock.withLock {
            guard reason == nil else { return nil }
            reason = why
            defer { continuation = nil }
            return continuation
        }
        c?.resume(returning: why)
    }

    func wait() async -> String {
        await withCheckedContinuation { (c: CheckedContinuation<String, Never>) in
            let already: String? = lock.withLock {
                if let reason { return reason }
                continuation = c
                return nil
            }
            if let already { c.resume(returning: already) }
        }
    }

    func watchSignals() {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in trigger(sig == SIGTERM ? "SIGTERM" : "SIGINT") }
            source.resume()
            sources.append(source)
        }
    }

    /// Watches stdin for EOF unless it is /dev/null (a background job in a script gets /dev/null) or closed.
    func watchStdin() {
        var st = stat()
        var null = stat()
        guard fstat(0, &st) == 0 else { return }
        if stat("/dev/null", &null) == 0, (st.st_mode & S_IFMT) == S_IFCHR, st.st_rdev == null.st_rdev { return }
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n > 0 { continue }
                if n < 0 && errno == EINTR { continue }
                break
            }
            trigger("stdin EOF")
        }
        thread.start()
    }
}

func jsonString(_ s: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
    let text = String(decoding: data, as: UTF8.self)
    return String(text.dropFirst().dropLast())
}

/// Every accepted message, for checking that none was lost or doubled:
/// {"fcm":[["TOKEN","NOTIFICATION_ID",COUNT],...],"webhook":[["WEBHOOK_ID",COUNT],...]}.
func deliveredJSON(fcm: FakeFCM, webhooks: FakeWebhookReceiver?) -> String {
    let fcmRows = fcm.acceptedCounts.map { "[\(jsonString($0.deviceToken)),\(jsonString($0.notificationID)),\($0.count)]" }
    let hookRows = (webhooks?.acceptedCounts ?? [:]).map { "[\(jsonString($0.key)),\($0.value)]" }
    return #"{"fcm":[\#(fcmRows.joined(separator: ","))],"webhook":[\#(hookRows.joined(separator: ","))]}"#
}

func run() async throws {
    let options = parseOptions(Array(CommandLine.arguments.dropFirst()))
    signal(SIGPIPE, SIG_IGN)
    let shutdown = Shutdown()
    shutdown.watchSignals()

    let account = try FakeFCM.makeServiceAccount(projectID: options.projectID)
    let fcm = try await FakeFCM(account: account, tokenLifetime: options.tokenLifetime)
    fcm.recordsMessages = false  // only counters are exposed (GET /stats); keeps memory flat in long runs
    try account.write(to: options.serviceAccountOut!, tokenURI: fcm.tokenURI)

    var receiver: FakeWebhookReceiver?
    if let path = options.webhookSecretOut {
        let secret = FakeWebhookReceiver.makeSecret()
        receiver = try await FakeWebhookReceiver(secret: secret)
        try FakeWebhookReceiver.writePrivateFile(secret, to: path)
    }

    if let n = options.failEvery {
        let counter = Counter()
        fcm.behaviour = { _, _ in counter.next() % n == 0 ? .error(.UNAVAILABLE, retryAfter: 0) : .success }
    }

    let webhooks = receiver
    fcm.customRoute = { [weak fcm] method, path in
        guard method == "GET", let fcm else { return nil }
        if path == "/delivered" { return (200, deliveredJSON(fcm: fcm, webhooks: webhooks)) }
        guard path == "/stats" else { return nil }
        let s = fcm.currentStats
        let body = """
            {"messages":\(s.messages),"send_requests":\(s.sendRequests),"token_requests":\(s.tokenRequests),\
            "distinct_notifications":\(s.distinctNotifications),"duplicate_messages":\(s.duplicateMessages),\
            "rejections":\(s.rejections),"webhooks":\(webhooks?.requestCount ?? 0),\
            "webhook_bad_signatures":\(webhooks?.badSignatureCount ?? 0),\
            "webhook_distinct":\(webhooks?.acceptedCounts.count ?? 0),\
            "webhook_duplicates":\(webhooks?.acceptedCounts.values.reduce(0) { $0 + $1 - 1 } ?? 0)}
            """
        return (200, body)
    }

    var line = #"{"fcm":\#(jsonString(fcm.baseURL))"#
    if let receiver { line += #","webhook":\#(jsonString(receiver.url))"# }
    line += "}\n"
    FileHandle.standardOutput.write(Data(line.utf8))

    if !options.ignoreStdin { shutdown.watchStdin() }
    let why = await shutdown.wait()
    FileHandle.standardError.write(Data("stockwatch-fakes: stopping (\(why))\n".utf8))
    await fcm.stop()
    await receiver?.stop()
}

if CommandLine.arguments.dropFirst().first == "--self-test" { await runSelfTest() }
if CommandLine.arguments.dropFirst().first == "--post-floor" { await runPostFloor(Array(CommandLine.arguments.dropFirst(2))) }
if CommandLine.arguments.dropFirst().first == "--post-lean" { await runPostLean(Array(CommandLine.arguments.dropFirst(2))) }
if CommandLine.arguments.dropFirst().first == "--post-lean-h2" { await runPostLeanH2(Array(CommandLine.arguments.dropFirst(2))) }

do {
    try await run()
    exit(0)
} catch {
    fail("\(error)", code: 1)
}
