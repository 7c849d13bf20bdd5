import Foundation
import NIOCore
import StockwatchModel
import StockwatchStore

/// `stockwatch notify`: sends every due delivery through its channel, up to
/// `[notify] concurrency` at once, and records each outcome with its retry schedule.
public struct NotifyService: Sendable {
    let database: any OutboxStore & AccessTokenStore & AccountStore & NotificationStateStore
    let config: Config
    let environment: [String: String]
    /// Where the stdout channel writes (standard output, or stderr under `--json`).
    let writeLine: @Sendable (String) -> Void

    public init(database: any OutboxStore & AccessTokenStore & AccountStore & NotificationStateStore, config: Config, environment: [String: String], writeLine: @escaping @Sendable (String) -> Void = NotifyService.standardOutput) {
        self.database = database
        self.config = config
        self.environment = environment
        self.writeLine = writeLine
    }

    public static let standardOutput: @Sendable (String) -> Void = { FileHandle.standardOutput.write(utf8: $0) }
    public static let standardError: @Sendable (String) -> Void = { FileHandle.standardError.write(utf8: $0) }

    public func run(now: Date = Date()) async throws(StockwatchError) -> NotifyReport {
        var report = NotifyReport()
        let settings = config.notify
        let waiting = try database.channelsWithDueDeliveries(now: now)
        guard !waiting.isEmpty else { return report }

        var prepared: [String: PreparedChannel] = [:]
        for name in waiting.sorted() {
            do { prepared[name] = try PreparedChannel.prepare(name, config: config, environment: environment) } catch { report.configErrors.append(error) }
        }
        let http = prepared.values.contains(where: \.needsHTTP) ? HTTPTransport(connectTimeoutSeconds: 10, connectionsPerHost: settings.concurrency) : nil
        let senders = prepared.mapValues { $0.sender(database: database, http: http, writeLine: writeLine) }
        for sender in senders.values { sender.warmUp() }
        var queue = DeliveryQueue(
            database: database, settings: settings,
            fanOutChannels: Set(senders.keys.filter { config.channel(named: $0)?.type == .fcm }))
        queue.quiet = try QuietClock.read(database, config: config, now: now)
        do {
            // The sends, the loop that keeps them going and their outcomes' turns run on
            // NIO's event loops, where their connections' answers arrive.
            try await withTaskExecutorPreference(EventLoopTaskExecutor.shared) { () async throws(StockwatchError) in
                try await send(with: senders, queue: queue, cutoff: now, report: &report)
            }
        } catch {
            await http?.shutdown()
            throw error
        }
        await http?.shutdown()
        report.deliveries.sort { $0.id < $1.id }
        return report
    }

    /// What finished in `send`'s task group: a send, or the one store step in flight.
    private enum Finished: Sendable {
        case sent(DeliveryJob, SendResult)
        case claimed(Result<DeliveryQueue.Claim, StockwatchError>, claimedAt: ContinuousClock.Instant)
        case renewed(Result<Set<Int64>, StockwatchError>, renewedAt: ContinuousClock.Instant)
        case recorded(Result<[DeliveryJSON], StockwatchError>)
    }

    /// A claimed job not sent yet, and when its lease was last taken or renewed.
    private struct Waiting {
        var job: DeliveryJob
        var heldSince: ContinuousClock.Instant
    }

    /// Keeps `concurrency` sends in flight while the store works beside them: the next
    /// batch is claimed before this one runs out, and outcomes are written as sends
    /// finish, so neither waits for the other's round trips (a PostgreSQL server is a
    /// network hop away). One store step is in flight at a time; the outcomes that finish
    /// while one runs are written together by the next (a group commit). So a killed run
    /// loses only the outcomes of its last store step or two, even when the other sends
    /// hang (those deliveries are sent again once their lease ends: at least once).
    private func send(with senders: [String: any ChannelSender], queue: DeliveryQueue, cutoff: Date, report: inout NotifyReport) async throws(StockwatchError) {
        guard !senders.isEmpty else { return }
        let concurrency = config.notify.concurrency
        let batch = max(concurrency * 4, 256)
        let channels = Set(senders.keys)
        // Taken from the front a send at a time: an array shifted the rest of a batch each
        // time (1% of notify's CPU at 10,000 sends).
        var waiting = CircularBuffer<Waiting>()
        var finished: [(DeliveryJob, SendResult)] = []
        var exhausted = false
        var failure: StockwatchError?

        await withTaskGroup(of: Finished.self) { group in
            var sending = 0
            var storeBusy = false
            while true {
                if !storeBusy {
                    // A claimed job can wait for a free slot as long as the sends before it
                    // take (up to their timeouts), longer than its lease. Before one starts
                    // more than a second after its lease was taken, the leases of those not
                    // started are renewed, and those whose claim ended meanwhile (their
                    // device removed or now another user's, their user removed) dropped;
                    // the lease then outlives the send (config check: lease >= longest
                    // send + 10 s). When the renewal fails, the rest is left for a later run.
                    if let first = waiting.first, ContinuousClock.now - first.heldSince > .seconds(1) {
                        let jobs = waiting.map(\.job)
                        storeBusy = true
                        group.addTask {
                            let renewedAt = ContinuousClock.now
                            return .renewed(await Self.result { () async throws(StockwatchError) in try await queue.renew(jobs[...]) }, renewedAt: renewedAt)
                        }
                    } else if !exhausted, failure == nil,
                              waiting.count <= batch / 2 || (waiting.count <= batch && finished.count < concurrency) {
                        // Claimed while a batch still waits: the store's thread shares the
                        // cores with the sends, and when the claim began at half a batch the
                        // sends ran dry for 6-7% of a 100,000-delivery run (0.3 s; 0.06 s now).
                        // Outcomes go first when as many as a round of sends wait and the
                        // sends are not about to run dry: a kill sends those again (issue
                        // 19's crash section). A claim adds a batch, so the outcomes' turn
                        // comes next.
                        storeBusy = true
                        group.addTask {
                            // The lease is taken now, not when the answer arrives.
                            let claimedAt = ContinuousClock.now
                            return .claimed(await Self.result { () async throws(StockwatchError) in
                                try await queue.claim(channels: channels, limit: batch, cutoff: cutoff)
                            }, claimedAt: claimedAt)
                        }
                    } else if !finished.isEmpty {
                        let outcomes = finished
                        finished.removeAll(keepingCapacity: true)
                        storeBusy = true
                        group.addTask {
                            .recorded(await Self.result { () async throws(StockwatchError) in
                                var random = SystemRandomNumberGenerator()
                                return try await queue.record(outcomes, random: &random)
                            })
                        }
                    }
                }
                // Only jobs whose lease was taken or renewed within the second.
                while sending < concurrency, let first = waiting.first, ContinuousClock.now - first.heldSince <= .seconds(1) {
                    let job = waiting.removeFirst().job
                    let sender = senders[job.channel]!
                    group.addTask { .sent(job, await sender.send(job)) }
                    sending += 1
                }
                guard let done = await group.next() else { break }
                switch done {
                case let .sent(job, result):
                    sending -= 1
                    finished.append((job, result))
                case let .claimed(result, claimedAt):
                    storeBusy = false
                    switch result {
                    case let .success(claim):
                        report.deliveries += claim.failed
                        waiting.append(contentsOf: claim.jobs.map { Waiting(job: $0, heldSince: claimedAt) })
                        report.held += claim.held
                        exhausted = claim.jobs.isEmpty && claim.failed.isEmpty && claim.held == 0
                    case let .failure(error):
                        failure = failure ?? error
                        exhausted = true
                    }
                case let .renewed(result, renewedAt):
                    storeBusy = false
                    switch result {
                    case let .success(held):
                        waiting = CircularBuffer(waiting.filter { held.contains($0.job.deliveryID) }.map { Waiting(job: $0.job, heldSince: renewedAt) })
                    case .failure:
                        waiting.removeAll()
                    }
                case let .recorded(result):
                    storeBusy = false
                    switch result {
                    case let .success(deliveries): report.deliveries += deliveries
                    case let .failure(error): failure = failure ?? error
                    }
                }
            }
        }
        if let failure { throw failure }
    }

    /// A store step's outcome as a value, for the task group.
    private static func result<T>(_ body: () async throws(StockwatchError) -> T) async -> Result<T, StockwatchError> {
        do throws(StockwatchError) { return .success(try await body()) } catch { return .failure(error) }
    }
}

/// What `notify` did: each delivery it finished (sent, retry, failed, dead) and the
/// channels it could not use.
public struct NotifyReport: Encodable, Sendable {
    public var deliveries: [DeliveryJSON] = []
    public var configErrors: [StockwatchError] = []
    /// Deliveries given back unsent because it is quiet on their user's clock.
    public var held = 0

    enum CodingKeys: String, CodingKey { case deliveries, held, configErrors = "config_errors" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(held, forKey: .held)
        try c.encode(configErrors.map(\.json), forKey: .configErrors)
    }
}
