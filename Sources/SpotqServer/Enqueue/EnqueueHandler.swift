import AMQPClient
import Foundation
import Logging
import PostgresClient
import SpotqBroker
import SpotqCore
import SpotqStore

/// The enqueue consumer's handler on the consumer shell: validates a batch, inserts the
/// valid messages in one transaction, dead-letters the refused ones, holds the batch while
/// PostgreSQL is unreachable, and replies after the acks.
struct EnqueueHandler: QueueHandler {
    let store: QueueStore
    let validator: EnqueueMessageValidator
    let backoff: RetryBackoff
    let logger: Logger
    let onSettled: @Sendable ([EnqueueOutcome]) -> Void
    /// Each batch's outcomes, from `decide` to `settled`.
    let pending = PendingOutcomes()

    func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision] {
        let messages = deliveries.map(ReceivedMessage.init)
        let batch = EnqueueBatch(messages, validator: validator)
        var inserted: [EnqueueOutcome] = []
        if !batch.valid.isEmpty {
            do {
                inserted = try await store.insert(batch.valid.map(\.message))
            } catch {
                return EnqueueBatch.held(deliveries.count, because: error)
            }
        }
        let outcomes = batch.outcomes(inserted: inserted)
        for (index, outcome) in outcomes.enumerated() {
            guard case .rejected(let reason) = outcome else { continue }
            logger.warning("enqueue: refused a message; dead-lettered", metadata: [
                "request_id": "\(batch.requestIDs[index] ?? "-")", "reason": "\(reason)",
                "message_id": "\(deliveries[index].properties.messageID ?? "-")",
            ])
        }
        pending.keep(PendingOutcomes.Entry(outcomes: outcomes, requestIDs: batch.requestIDs), for: deliveries)
        return EnqueueBatch.decisions(for: outcomes)
    }

    /// Returns once PostgreSQL answers; consuming before that would only hold messages.
    func ready() async throws {
        try await PostgresReadiness(store: store, backoff: backoff, name: "enqueue", logger: logger).wait()
    }

    /// Ack, then answer: an answer means the broker already forgot the request. (A crash
    /// in between loses the answer, never the request: it is committed.)
    func settled(_ deliveries: [AMQPDelivery], _ decisions: [DeliveryDecision], on channel: AMQPChannel) async {
        guard let entry = pending.take(for: deliveries) else { return }
        await sendReplies(EnqueueBatch.replies(for: deliveries.map(ReceivedMessage.init), outcomes: entry.outcomes, requestIDs: entry.requestIDs), on: channel)
        let accepted = entry.outcomes.reduce(0) { if case .accepted = $1 { $0 + 1 } else { $0 } }
        let refused = entry.outcomes.reduce(0) { if case .rejected = $1 { $0 + 1 } else { $0 } }
        logger.debug("enqueue: batch committed", metadata: [
            "messages": "\(deliveries.count)", "accepted": "\(accepted)", "refused": "\(refused)",
        ])
        onSettled(entry.outcomes)
    }

    /// Best effort: a reply queue that is gone does not keep a request from being acked.
    func sendReplies(_ replies: [AMQPOutgoingMessage], on channel: AMQPChannel) async {
        guard !replies.isEmpty else { return }
        do {
            _ = try await channel.publishBatch(replies)
        } catch {
            logger.warning("enqueue: could not send replies", metadata: ["error": "\(error)", "replies": "\(replies.count)"])
        }
    }
}

/// The outcomes of batches decided but not yet settled, by their first delivery.
final class PendingOutcomes: @unchecked Sendable {
    struct Entry {
        var outcomes: [EnqueueOutcome]
        var requestIDs: [String?]
    }

    // `entries` is only touched under `lock`.
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]

    private static func key(_ deliveries: [AMQPDelivery]) -> String {
        guard let first = deliveries.first else { return "" }
        return "\(first.consumerTag)/\(first.deliveryTag)/\(deliveries.count)"
    }

    func keep(_ entry: Entry, for deliveries: [AMQPDelivery]) {
        lock.withLock { entries[Self.key(deliveries)] = entry }
    }

    func take(for deliveries: [AMQPDelivery]) -> Entry? {
        lock.withLock { entries.removeValue(forKey: Self.key(deliveries)) }
    }
}
