import Dispatch
import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch notify --follow`: a long-running worker (systemd, not cron). It runs a
/// pass of `NotifyService` (every delivery due), then sleeps until another process commits
/// new deliveries (PostgreSQL wakes it with LISTEN/NOTIFY), the next retry or ended lease
/// falls due, or `poll` passes (SQLite has no wake-ups: it polls). Any number run at once,
/// on any number of machines: each delivery is claimed by one of them (see `OutboxStore`).
///
/// SIGTERM or SIGINT ends it after the pass in flight, its outcomes written: exit 0. A
/// broken channel config ends it with 78, a database it cannot reach with 69, as for a
/// single `notify`; the service manager restarts it.
public struct NotifyFollower: Sendable {
    let service: NotifyService
    let database: any OutboxStore
    /// The longest sleep between passes; nil: 1 s without wake-ups (SQLite), 30 s with
    /// them (a safety net: a wake-up is the rule).
    let poll: Duration?

    public init(service: NotifyService, database: any OutboxStore, poll: Duration?) {
        self.service = service
        self.database = database
        self.poll = poll
    }

    /// Runs until a stop signal; `passed` gets every pass's report that did something.
    public func run(passed: @Sendable (NotifyReport) -> Void) async throws(StockwatchError) {
        let bell = Bell()
        let stop = StopSignals { bell.ring() }
        defer { stop.cancel() }
        // Listening before the first pass: what commits during it rings for the next.
        let watch = try await database.watchDeliveries { bell.ring() }
        defer { watch?.stop() }
        let poll = poll ?? (watch == nil ? .seconds(1) : .seconds(30))
        while !stop.requested {
            var report = try await service.run(now: Date())
            // A broken channel ends the worker (its error is the exit's one line), after
            // the other channels' deliveries of the pass are shown.
            let broken = report.configErrors.first
            report.configErrors = []
            if !report.deliveries.isEmpty { passed(report) }
            if let broken { throw broken }
            if stop.requested { break }
            var sleep = poll
            if let due = try database.nextDeliveryDue() {
                let untilDue = Duration.milliseconds(max(0, Int64(due.timeIntervalSinceNow * 1000)))
                sleep = min(sleep, untilDue)
            }
            await bell.wait(upTo: sleep)
        }
    }
}

/// SIGTERM and SIGINT as a request to stop after the work in flight.
final class StopSignals: @unchecked Sendable {
    private let queue = DispatchQueue(label: "stockwatch.stop-signals")
    private let lock = NSLock()
    private var stopped = false
    private var sources: [any DispatchSourceSignal] = []

    init(onStop: @escaping @Sendable () -> Void) {
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                lock.withLock { stopped = true }
                onStop()
            }
            source.resume()
            return source
        }
    }

    var requested: Bool { lock.withLock { stopped } }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
