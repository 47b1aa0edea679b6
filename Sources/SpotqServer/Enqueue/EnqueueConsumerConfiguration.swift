import SpotqCore

/// How the enqueue consumer reads `spotq.enqueue`.
public struct EnqueueConsumerConfiguration: Sendable {
    /// The queue to consume (tests use their own).
    public var queue = BrokerNames.enqueueQueue
    /// Where refused messages go, with their reason in `x-spotq-reason`.
    public var deadLetterExchange = BrokerNames.deadLetterExchange
    /// Largest accepted message body (`SPOTQ_ENQUEUE_MAX_BYTES`).
    public var maxMessageBytes = EnqueueMessageValidator.defaultMaxBytes
    /// Unacknowledged deliveries the broker may push ahead (`SPOTQ_ENQUEUE_PREFETCH`).
    public var prefetch = 400
    /// Most messages written in one transaction (`SPOTQ_ENQUEUE_BATCH`).
    public var batchSize = 200
    /// How long to hold deliveries unacknowledged while PostgreSQL is unreachable, retrying,
    /// before handing them back to the queue and waiting for PostgreSQL without consuming
    /// (`SPOTQ_ENQUEUE_HOLD_SECONDS`). Kept well under RabbitMQ's consumer_timeout (15 min).
    public var holdLimit: Duration = .seconds(300)
    /// Backoff between attempts while PostgreSQL or RabbitMQ is unreachable.
    public var retryBackoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(5))

    public init() {}

    /// Reads the `SPOTQ_ENQUEUE_*` settings; flags are not offered for these.
    public static func from(_ settings: SettingsSource) throws -> EnqueueConsumerConfiguration {
        var configuration = EnqueueConsumerConfiguration()
        configuration.maxMessageBytes = try settings.integer(nil, env: "SPOTQ_ENQUEUE_MAX_BYTES", default: configuration.maxMessageBytes, range: 1_024...64 << 20)
        configuration.prefetch = try settings.integer(nil, env: "SPOTQ_ENQUEUE_PREFETCH", default: configuration.prefetch, range: 1...65_535)
        configuration.batchSize = try settings.integer(nil, env: "SPOTQ_ENQUEUE_BATCH", default: configuration.batchSize, range: 1...10_000)
        let hold = try settings.integer(nil, env: "SPOTQ_ENQUEUE_HOLD_SECONDS", default: 300, range: 1...840)
        configuration.holdLimit = .seconds(hold)
        return configuration
    }
}
