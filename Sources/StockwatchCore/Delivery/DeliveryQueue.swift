import Foundation
import StockwatchModel
import StockwatchStore

/// notify's side of the outbox (see `OutboxStore` for the claim and its fence): leases
/// from the config, and the retry schedule of each outcome.
struct DeliveryQueue: Sendable {
    let database: any OutboxStore & NotificationStateStore
    let settings: NotifySettings

    /// Channels whose deliveries a `devices` fan-out replaces (see `OutboxStore.claimDeliveries`).
    let fanOutChannels: Set<String>
    /// Whose deliveries wait now, on which channels.
    var quiet = QuietClock()
    /// The pushes' badges, counted once per user and run.
    let badges = UnreadBadges()

    /// A claim: the jobs to send, those that failed at once (no device), and how many
    /// were given back because it is quiet on their user's clock.
    struct Claim: Sendable {
        var jobs: [DeliveryJob]
        var failed: [DeliveryJSON]
        var held = 0
    }

    /// Claims up to `limit` deliveries of `channels` that were due at `cutoff` (the run's
    /// start, so that a retry scheduled during this run waits for the next one), or whose
    /// lease has ended.
    func claim(channels: Set<String>, limit: Int, cutoff: Date, now: Date = Date()) async throws(StockwatchError) -> Claim {
        let (claimed, failed) = try await database.claimDeliveries(
            channels: channels, fanOut: fanOutChannels, limit: limit, cutoff: cutoff,
            leaseUntil: now.addingTimeInterval(TimeInterval(settings.leaseSeconds)), now: now)
        // Given back unsent, due when the user's quiet hours end; not an attempt.
        let holding = claimed.filter(quiet.holds)
        for (user, group) in Dictionary(grouping: holding, by: \.notification.user) {
            let period = quiet.users[user]!
            _ = try await database.holdClaims(
                Dictionary(group.map { ($0.deliveryID, $0.attempt) }) { a, _ in a }, until: period.until, reason: period.reason, now: now)
        }
        var jobs = holding.isEmpty ? claimed : claimed.filter { !quiet.holds($0) }
        // The pushes' iOS badge: the unread notifications of each user about to get one,
        // this one included, counted the first time the run pushes to the user.
        let pushed = Set(jobs.filter { fanOutChannels.contains($0.channel) }.map(\.notification.user))
        let uncounted = badges.missing(pushed)
        if !uncounted.isEmpty { badges.store(try await database.unreadCounts(users: uncounted)) }
        for index in jobs.indices where fanOutChannels.contains(jobs[index].channel) { jobs[index].badge = badges[jobs[index].notification.user] }
        return Claim(jobs: quiet.digested(jobs), failed: failed, held: holding.count)
    }

    /// Which of these claimed jobs are still this run's to send, their leases renewed for
    /// a whole lease from `now`. One write for many jobs.
    func renew(_ jobs: ArraySlice<DeliveryJob>, now: Date = Date()) async throws(StockwatchError) -> Set<Int64> {
        try await database.renewClaims(
            Dictionary(jobs.flatMap { [$0] + $0.companions }.map { ($0.deliveryID, $0.attempt) }) { a, _ in a },
            leaseUntil: now.addingTimeInterval(TimeInterval(settings.leaseSeconds)), now: now)
    }

    /// Writes the outcomes of finished sends in one transaction and returns each
    /// delivery's new state. An outcome whose claim was lost (lease ended and another run
    /// took the row) is dropped: that run decides.
    func record(_ outcomes: [(DeliveryJob, SendResult)], now: Date = Date(), random: inout some RandomNumberGenerator) async throws(StockwatchError) -> [DeliveryJSON] {
        let backoff = Backoff(baseSeconds: settings.backoffBaseSeconds, capSeconds: settings.backoffCapSeconds)
        var planned: [DeliveryOutcome] = []
        // A digest's outcome is each of its deliveries' outcome.
        for (job, result) in outcomes.flatMap({ job, result in ([job] + job.companions).map { ($0, result) } }) {
            func outcome(_ status: DeliveryStatus, next: Date, error: String? = result.error) -> DeliveryOutcome {
                DeliveryOutcome(job: job, status: status, nextAttemptAt: next, error: error, deactivateDevice: result.deactivateDevice)
            }
            switch result.kind {
            case .sent: planned.append(outcome(.sent, next: now))
            case .failed: planned.append(outcome(.failed, next: now))
            case .retry:
                if job.attempt >= settings.maxAttempts {
                    planned.append(outcome(.dead, next: now, error: result.error.map { "gave up after \(job.attempt) attempts: \($0)" }))
                } else {
                    let delay = backoff.delay(afterAttempt: job.attempt, retryAfter: result.retryAfter, using: &random)
                    planned.append(outcome(.retry, next: now.addingTimeInterval(delay)))
                }
            }
        }
        return try await database.recordOutcomes(planned, now: now)
    }
}

/// Each user's unread count for the pushes' iOS badge, read the first time a run pushes
/// to the user and kept for the run. Counted again for every batch, it made a storm
/// quadratic: 100,000 pushes to 100 users took 99 s, each batch counting the thousand
/// unread notifications of each of its users. Every notification a run sends was created
/// before the run began, so the first count includes them all; what the app marks read
/// meanwhile shows from the next run.
final class UnreadBadges: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    func missing(_ users: Set<String>) -> Set<String> { lock.withLock { users.filter { counts[$0] == nil } } }
    func store(_ new: [String: Int]) { lock.withLock { counts.merge(new) { _, latest in latest } } }
    subscript(user: String) -> Int? { lock.withLock { counts[user] } }
}

/// Which users it is quiet for at the start of a notify run, and the channels that wait
/// for them (`quiet_hours` hold or digest; fcm's default is digest). Read at every run, so a
/// change of quiet hours or time zone counts from the next run on.
struct QuietClock: Sendable {
    /// By user name: when the quiet period ends, and the reason the held rows show.
    var users: [String: (until: Date, reason: String)] = [:]
    var channels: Set<String> = []
    /// Channels that send what quiet hours held as one push per device.
    var digestChannels: Set<String> = []
    static let digestSize = 100

    func holds(_ job: DeliveryJob) -> Bool { channels.contains(job.channel) && users[job.notification.user] != nil }

    /// Jobs with those that quiet hours held for one device, on a digest channel, folded
    /// into one job (the oldest first, the others its companions), at most
    /// `digestSize` to a push (FCM's payload is at most 4 KB). A single held job stays a
    /// plain push.
    func digested(_ jobs: [DeliveryJob]) -> [DeliveryJob] {
        guard !digestChannels.isEmpty, jobs.contains(where: { $0.heldForQuietHours && digestChannels.contains($0.channel) }) else { return jobs }
        var result: [DeliveryJob] = []
        var leads: [String: Int] = [:]
        for job in jobs {
            guard job.heldForQuietHours, digestChannels.contains(job.channel), let device = job.device else {
                result.append(job)
                continue
            }
            let key = "\(job.channel)/\(device.id)"
            if let lead = leads[key], result[lead].companions.count + 1 < Self.digestSize {
                result[lead].companions.append(job)
            } else {
                leads[key] = result.count
                result.append(job)
            }
        }
        return result
    }

    static func read(_ database: any AccountStore, config: Config, now: Date) throws(StockwatchError) -> QuietClock {
        var clock = QuietClock()
        clock.channels = Set(config.channels.values.filter(\.honoursQuietHours).map(\.name))
        clock.digestChannels = Set(config.channels.values.filter { $0.effectiveQuietHours == .digest }.map(\.name))
        guard !clock.channels.isEmpty else { return clock }
        for (name, zoneName, text) in try database.usersWithQuietHours() {
            // Both were checked when set; a zone this system no longer knows reads as UTC.
            guard let hours = try? QuietHours.parse(text, option: "quiet_hours") else { continue }
            let zone = TimeZone(identifier: zoneName) ?? TimeZone(identifier: "UTC")!
            guard hours.contains(now, in: zone) else { continue }
            let end = hours.end(after: now, in: zone)
            clock.users[name] = (end, "held for quiet hours (\(hours), \(zoneName)) until \(end.formatted(.iso8601)))")
        }
        return clock
    }
}
