import NIOCore
import NIOPosix

/// Runs a task's jobs on NIO's event loops: on the loop that resumes it when that is
/// one (a send resumed by its connection's answer goes on where the I/O finished, no
/// thread woken), else on the next. notify's sends run under it as their executor
/// preference. NIO's own takeover of the global executor
/// (`NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`)
/// cannot work in this binary: it looks the runtime's hook up with `dlsym`, and the
/// static Swift runtime is linked with `--exclude-libs ALL`, which keeps its symbols out
/// of the dynamic table.
final class EventLoopTaskExecutor: TaskExecutor {
    static let shared = EventLoopTaskExecutor()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        MultiThreadedEventLoopGroup.singleton.any().execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
