// stockwatch-wsbench: many WebSocket clients of `stockwatch serve` in one process, for
// Benchmarks/serve. Each client subscribes to some symbols and waits until it has their
// current quotes; then this tool runs `stockwatch fetch --from FILE` (which stores one new
// quote per symbol) and measures, for every quote every client should receive, the time
// from the moment it started that fetch to the moment the quote arrived. Starting the
// clock before the fetch process even starts makes the figures an upper bound.
//
// Usage: stockwatch-wsbench --port P[,P...] --tokens FILE --clients N --symbols S --per-client K
//                           --stockwatch BIN --quotes CSV [--min-price X]
// A quote counts as new when its price is at least --min-price (the CSV uses prices the
// initial quotes never reach). Prints one JSON line of results.
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOPosix
import Synchronization

struct Options {
    /// Client i connects to ports[i % count]: several serve instances share the clients.
    var ports = [8080]
    var tokens: [String] = []
    var clients = 1000
    var symbols = 100
    var perClient = 10
    var stockwatch = "stockwatch"
    var quotes = ""
    var minPrice = 1000.0

    init(_ arguments: [String]) throws {
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { throw Failure("\(flag) needs a value") }
            switch flag {
            case "--port": ports = value.split(separator: ",").map { Int($0) ?? 0 }
            case "--tokens": tokens = try String(contentsOfFile: value, encoding: .utf8).split(separator: "\n").map(String.init)
            case "--clients": clients = Int(value) ?? 0
            case "--symbols": symbols = Int(value) ?? 0
            case "--per-client": perClient = Int(value) ?? 0
            case "--stockwatch": stockwatch = value
            case "--quotes": quotes = value
            case "--min-price": minPrice = Double(value) ?? 0
            default: throw Failure("unknown flag \(flag)")
            }
        }
        guard !tokens.isEmpty, clients > 0, symbols > 0, perClient > 0, !quotes.isEmpty else { throw Failure("missing flags (see the header of main.swift)") }
    }
}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Shared between the clients' tasks.
final class Run: Sendable {
    struct State {
        var ready = 0
        var failed = 0
        var failures: [String] = []
        var fetchStartedAt: ContinuousClock.Instant?
        var latencies: [Duration] = []
        var duplicates = 0
    }
    let state = Mutex(State())
}

/// Client i watches symbols i, i+1, ... (mod S): every symbol has watchers, and K of them each.
func symbols(of client: Int, _ options: Options) -> [String] {
    (0..<options.perClient).map { String(format: "S%03d", (client * 7 + $0 * 13) % options.symbols) }
}

func runClient(_ index: Int, _ options: Options, _ run: Run, logger: Logger) async {
    let watched = Set(symbols(of: index, options))
    var headers = HTTPFields()
    headers[.authorization] = "Bearer \(options.tokens[index % options.tokens.count])"
    do {
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(options.ports[index % options.ports.count])/v1/stream",
            configuration: .init(maxFrameSize: 1 << 16, additionalHeaders: headers), logger: logger
        ) { inbound, outbound, _ in
            let request = #"{"type":"subscribe","symbols":["# + watched.sorted().map { "\"\($0)\"" }.joined(separator: ",") + "]}"
            try await outbound.write(.text(request))
            var initial = Set<String>(), fresh = Set<String>()
            var isReady = false
            for try await message in inbound.messages(maxSize: 1 << 16) {
                guard case let .text(text) = message,
                      let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                      object["type"] as? String == "quote", let symbol = object["symbol"] as? String, let price = object["price"] as? Double
                else { continue }
                let now = ContinuousClock.now
                if price >= options.minPrice {
                    if fresh.insert(symbol).inserted {
                        run.state.withLock { state in
                            if let start = state.fetchStartedAt { state.latencies.append(now - start) }
                        }
                    } else {
                        run.state.withLock { $0.duplicates += 1 }
                    }
                } else {
                    initial.insert(symbol)
                }
                if !isReady, initial.count == watched.count {
                    isReady = true
                    run.state.withLock { $0.ready += 1 }
                }
                if fresh.count == watched.count { break }
            }
            try await outbound.close(.normalClosure, reason: nil)
        }
    } catch is CancellationError {
        // The end of the run: a client still waiting shows up as a missing quote.
    } catch {
        run.state.withLock {
            $0.failed += 1
            if $0.failures.count < 5 { $0.failures.append("client \(index): \(error)") }
        }
    }
}

func main() async throws {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    let logger = Logger(label: "wsbench")
    let run = Run()
    let started = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<options.clients {
            group.addTask { await runClient(index, options, run, logger: logger) }
            // Stagger the connects a little so the listen backlog never overflows.
            if index % 100 == 99 { try await Task.sleep(for: .milliseconds(20)) }
        }
        // Wait until every client has its current quotes, then store the new ones.
        while true {
            let (ready, failed) = run.state.withLock { ($0.ready, $0.failed) }
            if ready + failed == options.clients { break }
            if ContinuousClock.now - started > .seconds(120) { throw Failure("only \(ready) of \(options.clients) clients got ready") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let connectTime = ContinuousClock.now - started
        run.state.withLock { $0.fetchStartedAt = .now }
        let fetch = Process()
        fetch.executableURL = URL(fileURLWithPath: options.stockwatch)
        fetch.arguments = ["fetch", "--from", options.quotes]
        try fetch.run()
        fetch.waitUntilExit()
        guard fetch.terminationStatus == 0 else { throw Failure("fetch exited \(fetch.terminationStatus)") }
        let fetchTime = ContinuousClock.now - run.state.withLock { $0.fetchStartedAt! }
        // Clients end once they have all their new quotes; give up after 30 s.
        let expectedAll = (options.clients - run.state.withLock { $0.failed }) * options.perClient
        let deadline = ContinuousClock.now + .seconds(30)
        while run.state.withLock({ $0.latencies.count }) < expectedAll, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        group.cancelAll()
        try await group.waitForAll()

        let state = run.state.withLock { $0 }
        let expected = expectedAll
        let sorted = state.latencies.sorted()
        func ms(_ d: Duration?) -> Double { d.map { Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15 } ?? -1 }
        func percentile(_ p: Double) -> Duration? { sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)] }
        let result: [String: Any] = [
            "clients": options.clients, "failed_clients": state.failed, "failures": state.failures,
            "expected": expected, "received": sorted.count, "duplicates": state.duplicates,
            "connect_ms": ms(connectTime), "fetch_ms": ms(fetchTime),
            "p50_ms": ms(percentile(0.50)), "p99_ms": ms(percentile(0.99)), "max_ms": ms(sorted.last),
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

try await main()
