import Foundation
import StockwatchModel

/// A configured channel, ready to send. Senders never throw: every failure becomes a
/// `SendResult` that says whether to retry, so one bad delivery cannot stop a run.
protocol ChannelSender: Sendable {
    func send(_ job: DeliveryJob) async -> SendResult
}
