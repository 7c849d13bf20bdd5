import Foundation

/// Wakes one waiter; a ring while nobody waits is kept for the next wait, so none is lost
/// between a pass's last read and the sleep after it.
public final class Bell: Sendable {
    public init() {}

    private let state = Locked()

    public func ring() {
        state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                waiter.resume()
            } else {
                state.rung = true
            }
        }
    }

    public func wait(upTo timeout: Duration) async {
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { ring() }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = state.withLock { state in
                if state.rung {
                    state.rung = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
        timer.cancel()
        // A timer that rang as another ring woke us leaves `rung` set: one spare pass at most.
    }

    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private final class Locked: @unchecked Sendable {
        private let lock = NSLock()
        private var value = State()
        func withLock<T>(_ body: (inout State) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(&value)
        }
    }
}
