import Dispatch
import Foundation
import Logging

/// A serve told to stop must stop. ServiceGroup cancels its services through
/// swift-async-algorithms' `merge`, which can deadlock on cancellation
/// (apple/swift-async-algorithms#430, open): seen here once as a serve that ignored
/// SIGTERM for minutes, its event loop thread waiting on a lock. On SIGTERM or SIGINT this
/// starts a timer on a dispatch queue, outside the event loops; if the graceful shutdown
/// (at most 10 s) has not ended the process by then, it exits anyway. Everything serve
/// writes is committed as it goes, so nothing is lost.
final class ShutdownWatchdog: @unchecked Sendable {
    // Set once in init; `stopped` only under `lock`.
    private var sources: [any DispatchSourceSignal] = []
    private let lock = NSLock()
    private var stopped = false

    init(exitAfter delay: Duration, logger: Logger) {
        let queue = DispatchQueue(label: "stockwatch.shutdown-watchdog")
        sources = [SIGTERM, SIGINT].map { signalNumber in
            // ServiceGroup ignores these too, so that its own handlers, and this one, see them.
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                queue.asyncAfter(deadline: .now() + .milliseconds(Int(delay.components.seconds * 1000))) { [weak self] in
                    guard let self, !self.lock.withLock({ self.stopped }) else { return }
                    logger.warning("serve did not stop within \(delay.components.seconds) s of the signal; exiting anyway")
                    exit(0)
                }
            }
            source.resume()
            return source
        }
    }

    /// The process is stopping normally (or the server failed): no timer is needed.
    func cancel() {
        lock.withLock { stopped = true }
        for source in sources { source.cancel() }
    }
}
