import Dispatch

extension Evaluation {
    /// Lets go of the run's working state on another thread, leaving this one empty. A
    /// near-price tick at 1,000,000 alerts holds a few hundred thousand small allocations
    /// (firings and their messages, each symbol's quotes), and freeing them took 3% of its
    /// CPU, inside its write transaction; a process that exits next (a cron tick) never
    /// pays for it now, and a long-running one frees it beside its next work.
    mutating func releaseInBackground() {
        // The lookups hold the backend's connection: let go of it here, on its thread.
        lookupReference = { _, _ in nil }
        lookupDaily = { _ in nil }
        // And Foundation's time zones and calendars (the market days, a scheduled alert's
        // zone): ICU lies under them, whose teardown at exit must not race a free. What
        // goes to the other thread is Swift's own arrays, strings and dictionaries.
        marketDays = [:]
        marketZones = [:]
        candidates = []
        let empty = Evaluation(now: now, staleBefore: staleBefore, prefilter: prefilter)
        HeldForRelease(taking: &self, leaving: empty).releaseOnAnotherThread()
    }
}

/// A value handed to the thread that frees it: its only owner, which nothing else touches.
final class HeldForRelease<Value>: @unchecked Sendable {
    private var value: Value?

    /// Takes `value`, leaving `empty` in its place (a swap: no copy stays behind).
    init(taking value: inout Value, leaving empty: Value) {
        self.value = empty
        swap(&value, &self.value!)
    }

    func releaseOnAnotherThread() {
        DispatchQueue.global(qos: .utility).async { self.value = nil }
    }
}
