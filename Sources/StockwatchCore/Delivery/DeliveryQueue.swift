import Foundation
import StockwatchModel
import StockwatchStore

/// notify's side of the outbox (see `OutboxStore` for the claim and its fence): leases
/// from the config, and the retry schedule of each outcome.
struct DeliveryQueue: Sendable {
    let database: any OutboxStore
    let settings: NotifySettings

    /// Channels whose deliveries a `devices` fan-out replaces (see `OutboxStore.claimDeliveries`).
    let fanOutChannels: Set<String>

    /// Claims up to `limit` deliveries of `channels` that were due at `cutoff` (the run's
    /// start, so that a retry scheduled during this run waits for the next one), or whose
    /// lease has ended.
    func claim(channels: Set<String>, limit: Int, cutoff: Date, now: Date = Date()) async throws(StockwatchError) -> (jobs: [DeliveryJob], failed: [DeliveryJSON]) {
        try await database.claimDeliveries(
            channels: channels, fanOut: fanOutChannels, limit: limit, cutoff: cutoff,
            leaseUntil: now.addingTimeInterval(TimeInterval(settings.leaseSeconds)), now: now)
    }

    /// Which of these claimed jobs are still this run's to send, their leases renewed for
    /// a whole lease from `now`. One write for many jobs.
    func renew(_ jobs: ArraySlice<DeliveryJob>, now: Date = Date()) async throws(StockwatchError) -> Set<Int64> {
        try await database.renewClaims(
            Dictionary(jobs.map { ($0.deliveryID, $0.attempt) }) { a, _ in a },
            leaseUntil: now.addingTimeInterval(TimeInterval(settings.leaseSeconds)), now: now)
    }

    /// Writes the outcomes of finished sends in one transaction and returns each
    /// delivery's new state. An outcome whose claim was lost (lease ended and another run
    /// took the row) is dropped: that run decides.
    func record(_ outcomes: [(DeliveryJob, SendResult)], now: Date = Date(), random: inout some RandomNumberGenerator) async throws(StockwatchError) -> [DeliveryJSON] {
        let backoff = Backoff(baseSeconds: settings.backoffBaseSeconds, capSeconds: settings.backoffCapSeconds)
        var planned: [DeliveryOutcome] = []
        for (job, result) in outcomes {
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
