import Foundation
import StockwatchModel
import StockwatchStore

/// `stockwatch notify`: sends every due delivery through its channel, up to
/// `[notify] concurrency` at once, and records each outcome with its retry schedule.
public struct NotifyService: Sendable {
    let database: any OutboxStore & AccessTokenStore
    let config: Config
    let environment: [String: String]
    /// Where the stdout channel writes (standard output, or stderr under `--json`).
    let writeLine: @Sendable (String) -> Void

    public init(database: any OutboxStore & AccessTokenStore, config: Config, environment: [String: String], writeLine: @escaping @Sendable (String) -> Void = NotifyService.standardOutput) {
        self.database = database
        self.config = config
        self.environment = environment
        self.writeLine = writeLine
    }

    public static let standardOutput: @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }
    public static let standardError: @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }

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
        let queue = DeliveryQueue(
            database: database, settings: settings,
            fanOutChannels: Set(senders.keys.filter { config.channel(named: $0)?.type == .fcm }))
        do {
            try await send(with: senders, queue: queue, cutoff: now, report: &report)
        } catch {
            await http?.shutdown()
            throw error
        }
        await http?.shutdown()
        report.deliveries.sort { $0.id < $1.id }
        return report
    }

    /// Claims in batches and keeps `concurrency` sends in flight; outcomes are written in
    /// batches as they finish, so a killed run loses at most the outcomes of its last
    /// 100 ms (those deliveries are sent again once their lease ends: at least once).
    private func send(with senders: [String: any ChannelSender], queue: DeliveryQueue, cutoff: Date, report: inout NotifyReport) async throws(StockwatchError) {
        guard !senders.isEmpty else { return }
        let concurrency = config.notify.concurrency
        let batch = max(concurrency * 4, 32)
        let channels = Set(senders.keys)
        var random = SystemRandomNumberGenerator()
        var pending: [DeliveryJob] = []
        var next = 0
        // When the claimed jobs were last checked to still be this run's (see below).
        var checkedAt = ContinuousClock.now
        var finished: [(DeliveryJob, SendResult)] = []
        var exhausted = false
        var failure: StockwatchError?

        await withTaskGroup(of: (DeliveryJob, SendResult).self) { group in
            var inFlight = 0
            var lastFlush = ContinuousClock.now
            func flush() async {
                lastFlush = ContinuousClock.now
                guard !finished.isEmpty else { return }
                do throws(StockwatchError) {
                    report.deliveries += try await queue.record(finished, random: &random)
                } catch {
                    failure = failure ?? error
                }
                finished.removeAll(keepingCapacity: true)
            }
            while true {
                if next == pending.count, !exhausted, failure == nil {
                    await flush()
                    do throws(StockwatchError) {
                        let claim = try await queue.claim(channels: channels, limit: batch, cutoff: cutoff)
                        report.deliveries += claim.failed
                        pending = claim.jobs
                        next = 0
                        checkedAt = ContinuousClock.now
                        exhausted = claim.jobs.isEmpty && claim.failed.isEmpty
                        if pending.isEmpty, !exhausted { continue }
                    } catch {
                        failure = error
                        exhausted = true
                    }
                }
                // A claimed job can wait for a free slot as long as the sends before it take
                // (up to their timeouts), longer than its lease. Before starting more, renew
                // the leases of those not started yet and drop those whose claim ended
                // meanwhile (their device removed or now another user's, their user removed),
                // so that no send starts more than a second after its claim was last renewed:
                // the lease then outlives the send (config check: lease >= longest send + 10 s).
                // When the renewal fails, the rest is left for a later run once its lease ends.
                if next < pending.count, ContinuousClock.now - checkedAt > .seconds(1) {
                    checkedAt = ContinuousClock.now
                    do throws(StockwatchError) {
                        let held = try await queue.renew(pending[next...])
                        pending = Array(pending[..<next]) + pending[next...].filter { held.contains($0.deliveryID) }
                    } catch {
                        pending = Array(pending[..<next])
                    }
                }
                while inFlight < concurrency, next < pending.count {
                    let job = pending[next]
                    next += 1
                    let sender = senders[job.channel]!
                    group.addTask { (job, await sender.send(job)) }
                    inFlight += 1
                }
                guard inFlight > 0, let done = await group.next() else { break }
                inFlight -= 1
                finished.append(done)
                // Written in batches for speed, but at least every 100 ms so that a killed
                // run sends few deliveries twice.
                if finished.count >= batch || ContinuousClock.now - lastFlush > .milliseconds(100) { await flush() }
            }
            await flush()
        }
        if let failure { throw failure }
    }
}

/// What `notify` did: each delivery it finished (sent, retry, failed, dead) and the
/// channels it could not use.
public struct NotifyReport: Encodable, Sendable {
    public var deliveries: [DeliveryJSON] = []
    public var configErrors: [StockwatchError] = []

    enum CodingKeys: String, CodingKey { case deliveries, configErrors = "config_errors" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(configErrors.map(\.json), forKey: .configErrors)
    }
}
