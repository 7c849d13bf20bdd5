import Foundation
import StockwatchModel

/// An exclusive, non-blocking lock on a file beside the database (never the database
/// itself: closing any descriptor of it would drop SQLite's own locks). The kernel
/// releases it when the process dies, so a killed run never leaves it held.
public final class RunLock: RunLease, Sendable {
    private let descriptor: Int32

    public init(path: String, holder: String) throws(StockwatchError) {
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .unavailable("cannot open lock file \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            close(fd)
            if busy { throw .temporary("another \(holder) is still running (it holds \(path)); this one did nothing") }
            throw .unavailable("cannot lock \(path): \(String(cString: strerror(errno)))")
        }
        descriptor = fd
    }

    public func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
