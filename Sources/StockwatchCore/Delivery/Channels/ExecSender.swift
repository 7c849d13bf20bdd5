import Foundation
import StockwatchModel
import StockwatchStore
import Subprocess
import SystemPackage

/// Runs the channel's program without a shell, the notification JSON on its stdin.
/// Exit 0 is success; anything else, or running past the timeout, is retried.
struct ExecSender: ChannelSender {
    let channel: ChannelConfig
    let command: [String]

    init(channel: ChannelConfig) throws(StockwatchError) {
        guard let command = channel.command, let program = command.first else {
            throw .config(file: "config", line: nil, key: "channels.\(channel.name).command", reason: "is required for an exec channel")
        }
        guard FileManager.default.isExecutableFile(atPath: program) else {
            throw .config(file: "config", line: nil, key: "channels.\(channel.name).command", reason: "\(program) is not an executable file")
        }
        // Every notification runs it: nobody else may swap it.
        do { try PathSafety.check(program) } catch {
            throw .config(file: "config", line: nil, key: "channels.\(channel.name).command", reason: error.message)
        }
        self.channel = channel
        self.command = command
    }

    func send(_ job: DeliveryJob) async -> SendResult {
        Self.ignoreSIGPIPE
        return await Self.run(command, input: job.notification.json, timeoutSeconds: channel.effectiveTimeoutSeconds)
    }

    /// A program that exits without reading its stdin must not kill us with SIGPIPE when we
    /// write the notification to it. Set on the first send, not when a channel is merely
    /// built (`config check` builds them all and runs none).
    private static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// The program's whole environment: ours holds STOCKWATCH_* secrets and whatever cron
    /// or the service manager set. A program needing more can be run through /usr/bin/env.
    static let environment: Subprocess.Environment = .custom(["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"])

    /// How much of the end of the program's stderr is kept, for the last line in the error.
    static let stderrTailBytes = 4096

    static func run(_ command: [String], input: Data, timeoutSeconds: Int64) async -> SendResult {
        let options = platformOptions
        let outcome = await withTaskGroup(of: RunOutcome.self) { group in
            group.addTask {
                do {
                    // stderr is read while the program runs, so one that writes a lot of it
                    // never blocks on a full pipe; only its tail is kept.
                    let result = try await Subprocess.run(
                        .path(FilePath(command[0])),
                        arguments: Arguments(Array(command.dropFirst())),
                        environment: environment,
                        platformOptions: options,
                        input: .inputWriter,
                        output: .discarded,
                        error: .sequence
                    ) { execution in
                        try await withThrowingTaskGroup(of: [UInt8].self) { readers in
                            readers.addTask { await tail(of: execution.standardError) }
                            // A program may exit without reading its input; that alone is no failure.
                            _ = try? await execution.standardInputWriter.write(input)
                            try? await execution.standardInputWriter.finish()
                            return try await readers.next() ?? []
                        }
                    }
                    return .finished(result.terminationStatus, stderr: result.closureResult)
                } catch is CancellationError {
                    return .timedOut
                } catch {
                    return Task.isCancelled ? .timedOut : .notStarted(String(describing: error))
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(timeoutSeconds))
                return .timedOut
            }
            let first = await group.next() ?? .timedOut
            // notify is stopping (its task was cancelled), not the program running long.
            let outcome = Task.isCancelled && first == .timedOut ? .stopped : first
            // Either the program ended and the timer is cancelled, or the timer fired and
            // the run is cancelled, which tears the program down before it returns.
            group.cancelAll()
            while await group.next() != nil {}
            return outcome
        }
        switch outcome {
        case .timedOut:
            return .retry("exec: \(command[0]) ran longer than \(timeoutSeconds) s and was stopped")
        case .stopped:
            return .retry("exec: \(command[0]) was stopped because notify is stopping")
        case .notStarted(let error):
            return .retry("exec: cannot run \(command[0]): \(error.truncatedForMessage)")
        case .finished(.exited(0), _):
            return .sent
        case .finished(let status, let stderr):
            let how: String
            switch status {
            case .exited(let code): how = "exited with status \(code)"
            case .signaled(let signal): how = "was killed by signal \(signal)"
            }
            let lastLine = String(decoding: stderr, as: UTF8.self).split(whereSeparator: \.isNewline).last.map { String($0).truncatedForMessage }
            return .retry("exec: \(command[0]) \(how)" + (lastLine.map { ": \($0)" } ?? ""))
        }
    }

    /// The program runs in a process group of its own, so that past the timeout SIGTERM,
    /// then SIGKILL two seconds later, reach the children it started too.
    private static var platformOptions: PlatformOptions {
        var options = PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        return options
    }

    private enum RunOutcome: Sendable, Equatable {
        case finished(TerminationStatus, stderr: [UInt8])
        case notStarted(String)
        case timedOut
        case stopped
    }

    /// Reads the stream to its end (or until the program exits and the library stops
    /// waiting on a pipe a left-behind child still holds), keeping the last bytes.
    private static func tail(of stream: SubprocessOutputSequence) async -> [UInt8] {
        var kept: [UInt8] = []
        do {
            for try await buffer in stream {
                buffer.withUnsafeBytes { kept.append(contentsOf: $0) }
                if kept.count > 2 * stderrTailBytes { kept.removeFirst(kept.count - stderrTailBytes) }
            }
        } catch {
            // A read error leaves what was read so far; the exit status decides the outcome.
        }
        return Array(kept.suffix(stderrTailBytes))
    }
}

/// One human line per notification on standard output, for cron to mail.
struct StdoutSender: ChannelSender {
    let write: @Sendable (String) -> Void

    func send(_ job: DeliveryJob) async -> SendResult {
        let n = job.notification
        let time = n.observedAt.formatted(.iso8601)
        write("\(time) \(n.user): \(n.message) (notification \(n.id))\n")
        return .sent
    }
}
