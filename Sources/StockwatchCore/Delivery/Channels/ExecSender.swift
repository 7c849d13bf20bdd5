import Foundation
import StockwatchModel
import StockwatchStore

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
        // A program that exits without reading its stdin must not kill us with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        self.channel = channel
        self.command = command
    }

    func send(_ job: DeliveryJob) async -> SendResult {
        let input = job.notification.json
        let command = command
        let timeout = channel.effectiveTimeoutSeconds
        // Process waits block a thread; keep them off the concurrency pool's few threads.
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Self.run(command, input: input, timeoutSeconds: timeout))
            }
        }
    }

    /// The program's whole environment: ours holds STOCKWATCH_* secrets and whatever cron
    /// or the service manager set. A program needing more can be run through /usr/bin/env.
    static let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"]

    static func run(_ command: [String], input: Data, timeoutSeconds: Int64) -> SendResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = environment
        let stdin = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        process.standardError = stderr
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do { try process.run() } catch {
            return .retry("exec: cannot run \(command[0]): \(error.localizedDescription)")
        }
        try? stdin.fileHandleForWriting.write(contentsOf: input)
        try? stdin.fileHandleForWriting.close()
        if exited.wait(timeout: .now() + .seconds(Int(timeoutSeconds))) == .timedOut {
            process.terminate()
            if exited.wait(timeout: .now() + .seconds(2)) == .timedOut { kill(process.processIdentifier, SIGKILL) }
            return .retry("exec: \(command[0]) ran longer than \(timeoutSeconds) s and was stopped")
        }
        if process.terminationReason == .exit, process.terminationStatus == 0 { return .sent }
        let how = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)" : "was killed by signal \(process.terminationStatus)"
        let lastLine = lastLine(of: stderr)
        return .retry("exec: \(command[0]) \(how)" + (lastLine.map { ": \($0)" } ?? ""))
    }

    /// The last line the program wrote to stderr, read without blocking (a child it left
    /// running may still hold the pipe open).
    private static func lastLine(of pipe: Pipe) -> String? {
        let fd = pipe.fileHandleForReading.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var collected = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while collected.count < 65536 {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            collected.append(contentsOf: buffer[0..<count])
        }
        let text = String(decoding: collected, as: UTF8.self)
        return text.split(whereSeparator: \.isNewline).last.map { String($0).truncatedForMessage }
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
