// `stockwatch-fakes --post-floor ACCOUNT_JSON COUNT [CONCURRENCY]`: the ceiling of any notify
// built on AsyncHTTPClient. It sends COUNT FCM messages of notify's shape to the fake FCM
// whose service account is ACCOUNT_JSON (started by another `stockwatch-fakes`), with
// CONCURRENCY in flight (default 64, notify's), through AsyncHTTPClient configured and
// called as stockwatch's HTTPTransport.post is, and nothing else: no database, no claim,
// no message built per send. Prints one line: sends a second and this process's CPU.

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TestSupport

func runPostFloor(_ arguments: [String]) async {
    guard arguments.count >= 2, let count = Int(arguments[1]), count > 0 else {
        fail("usage: stockwatch-fakes --post-floor ACCOUNT_JSON COUNT [CONCURRENCY]")
    }
    let concurrency = arguments.count > 2 ? Int(arguments[2]) ?? 64 : 64
    // As stockwatch's main does: Swift tasks run on NIO's event loops.
    _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    do {
        let account = try FakeFCM.ServiceAccount.read(from: arguments[0])
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        configuration.redirectConfiguration = .disallow
        configuration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)

        let tokenBody = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + (try account.account.makeAssertion(tokenURI: account.tokenURI))
        let tokenRequest = try HTTPClient.Request(
            url: account.tokenURI, method: .POST, headers: ["Content-Type": "application/x-www-form-urlencoded"], body: .string(tokenBody))
        let tokenResponse = try await client.execute(request: tokenRequest).get()
        guard let tokenBytes = tokenResponse.body, let token = (try JSONSerialization.jsonObject(with: Data(tokenBytes.readableBytesView)) as? [String: Any])?["access_token"] as? String
        else { fail("the fake issued no access token") }
        let sendURL = String(account.tokenURI.dropLast("/token".count)) + "/v1/projects/\(account.account.projectID)/messages:send"
        // One body per send, built before the clock starts: notify's shape and size.
        let bodies = (0..<count).map { i in
            Data((#"{"message":{"token":"device-\#(i % 1000)","notification":{"title":"S\#(i % 1000) alert","body":"S\#(i % 1000) is at or above 100.50 at 101.00"},"#
                + #""data":{"notification_id":"\#(i + 1)","alert_id":"\#(i + 1)","symbol":"S\#(i % 1000)","price":"101","observed_at":"2026-12-04T22:00:00Z"},"#
                + #""android":{"priority":"HIGH","ttl":"3600s","collapse_key":"alert-\#(i + 1)","notification":{"tag":"S\#(i % 1000)"}},"#
                + #""apns":{"headers":{"apns-priority":"10","apns-expiration":"1796000000","apns-collapse-id":"alert-\#(i + 1)"},"payload":{"aps":{"sound":"default","thread-id":"S\#(i % 1000)","badge":1}}}}}"#).utf8)
        }
        let headers = HTTPHeaders([("Authorization", "Bearer \(token)"), ("Content-Type", "application/json; charset=UTF-8"), ("User-Agent", "stockwatch-fakes")])
        let next = Counter()
        let cpuBefore = processCPUSeconds()
        let started = ContinuousClock.now
        let failures = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var failed = 0
                    while true {
                        let i = next.next() - 1
                        guard i < count else { return failed }
                        do {
                            let request = try HTTPClient.Request(url: sendURL, method: .POST, headers: headers, body: .bytes(bodies[i]))
                            let accumulator = ResponseAccumulator(request: request, maxBodySize: 1 << 20)
                            let response = try await client.execute(request: request, delegate: accumulator, deadline: .now() + .seconds(10)).futureResult.get()
                            if response.status != .ok { failed += 1 }
                        } catch {
                            failed += 1
                        }
                    }
                }
            }
            return await group.reduce(0, +)
        }
        let elapsed = (ContinuousClock.now - started).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        let cpu = processCPUSeconds() - cpuBefore
        print(String(format: "post-floor: %d FCM messages in %.2f s = %.0f/s, %d failed, %d in flight; this process used %.2f s of CPU (%.3f ms a send)",
                     count, seconds, Double(count) / seconds, failures, concurrency, cpu, cpu / Double(count) * 1000))
        try await client.shutdown()
        exit(failures == 0 ? 0 : 1)
    } catch {
        fail("post-floor: \(error)")
    }
}

/// User and system CPU seconds of this process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
