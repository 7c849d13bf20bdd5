import Foundation
import StockwatchModel

/// A configured channel, ready to send. Senders never throw: every failure becomes a
/// `SendResult` that says whether to retry, so one bad delivery cannot stop a run.
protocol ChannelSender: Sendable {
    func send(_ job: DeliveryJob) async -> SendResult
    /// Begins what its first sends would wait for (an access token) while notify claims
    /// its first batch; it never fails a send by itself.
    func warmUp()
}

extension ChannelSender {
    func warmUp() {}
}
