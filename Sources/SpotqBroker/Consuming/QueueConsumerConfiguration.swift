import SpotqCore

/// How a ``QueueConsumer`` reads its queue.
public struct QueueConsumerConfiguration: Sendable {
    /// The queue to consume.
    public var queue: String
    /// Prefix of the consumer's log lines ("enqueue", "events", …).
    public var name: String
    /// Unacknowledged deliveries the broker may push ahead (`basic.qos`).
    public var prefetch: UInt16 = 50
    /// Most deliveries handed to the handler at once: the next delivery plus those already
    /// arrived behind it, never waiting for more (1: one at a time).
    public var batchSize = 1
    /// Where dead letters go, with their reason in `x-spotq-reason`.
    public var deadLetterExchange = BrokerNames.deadLetterExchange
    /// Where retry copies go; nil: back to each delivery's own exchange. A pod's worker
    /// uses `spotq.pod.retry`, the one exchange toward its batch queue it may write to.
    public var retryExchange: String?
    /// How long held deliveries stay unacknowledged, retried, before going back to the queue.
    /// Kept well under RabbitMQ's consumer_timeout (15 min).
    public var holdLimit: Duration = .seconds(300)
    /// Backoff between reconnects, between offers of held deliveries, and between failed
    /// `ready()` calls.
    public var backoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(5))

    public init(queue: String, name: String) {
        self.queue = queue
        self.name = name
    }

    var holdPolicy: HoldPolicy { HoldPolicy(limit: holdLimit, backoff: backoff) }
}
