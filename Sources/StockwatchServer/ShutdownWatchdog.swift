import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import StockwatchCore
import StockwatchModel

/// A serve told to stop must stop. ServiceGroup cancels its services through
/// swift-async-algorithms' `merge`, which can deadlock on cancellation
/// (apple/swift-async-algorithms#430, open): seen here as a serve that ignored SIGTERM for
/// minutes, and one that never exited after its bind failed. On SIGTERM or SIGINT, or a
/// service that failed (`WatchedService`), this starts a timer on a dispatch queue,
/// outside the event loops; if the graceful shutdown (at most 10 s) has not ended the
/// process by then, it exits anyway. Everything serve writes is committed as it goes.
final class ShutdownWatchdog: @unchecked Sendable {
    private let delay: Duration
    private let logger: Logger
    /// The signal sources and the timer run here, outside the event loops.
    private let queue = DispatchQueue(label: "stockwatch.shutdown-watchdog")
    // Set once in init; `stopped` only under `lock`.
    private var sources: [any DispatchSourceSignal] = []
    private let lock = NSLock()
    private var stopped = false
    private var startup: DispatchWorkItem?

    init(exitAfter delay: Duration, logger: Logger) {
        self.delay = delay
        self.logger = logger
        sources = [SIGTERM, SIGINT].map { signalNumber in
            // ServiceGroup ignores these too, so that its own handlers, and this one, see them.
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { [weak self] in self?.arm(exitStatus: 0, message: nil) }
            source.resume()
            return source
        }
    }

    /// The process is stopping (a signal, or a service that failed): unless `cancel` comes
    /// first, it exits after the delay, with `message` as its error line when given.
    func arm(exitStatus: Int32, message: String?) {
        let delay = self.delay, logger = self.logger
        queue.asyncAfter(deadline: .now() + .milliseconds(Int(delay.components.seconds * 1000))) { [weak self] in
            guard let self, !self.lock.withLock({ self.stopped }) else { return }
            logger.warning("serve did not stop within \(delay.components.seconds) s; exiting anyway")
            Self.exit(exitStatus, message: message)
        }
    }

    /// Exits with `exitStatus` after `delay` unless `started` (or `cancel`) comes first.
    func startDeadline(after delay: Duration, exitStatus: Int32, message: String) {
        let item = DispatchWorkItem { Self.exit(exitStatus, message: message) }
        lock.withLock { startup = item }
        queue.asyncAfter(deadline: .now() + .milliseconds(Int(delay.components.seconds * 1000)), execute: item)
    }

    private static func exit(_ status: Int32, message: String?) -> Never {
        if let message { FileHandle.standardError.write(Data("stockwatch: error: \(message.printableLine)\n".utf8)) }
        Foundation.exit(status)
    }

    /// The server is listening.
    func started() { lock.withLock { startup?.cancel() } }

    /// The process is stopping normally: no timer is needed.
    func cancel() {
        lock.withLock { stopped = true; startup?.cancel() }
        for source in sources { source.cancel() }
    }
}

/// A service whose failure arms the watchdog before the group starts cancelling the
/// others: the process then exits with the failure's status even if that cancellation
/// never returns.
struct WatchedService<Inner: Service>: Service {
    let inner: Inner
    let watchdog: ShutdownWatchdog
    let describe: @Sendable (any Error) -> StockwatchError

    func run() async throws {
        do {
            try await inner.run()
        } catch {
            let failure = describe(error)
            watchdog.arm(exitStatus: failure.exitStatus.rawValue, message: failure.message)
            throw error
        }
    }
}
