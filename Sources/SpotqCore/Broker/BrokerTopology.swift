/// The exchanges, queues and bindings spotq uses on RabbitMQ, as data.
///
/// `spotq migrate` (and every service at start) declares this idempotently. Queue and
/// exchange names live here and nowhere else.
public struct BrokerTopology: Sendable, Equatable {
    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]

    public init(exchanges: [Exchange], queues: [Queue], bindings: [Binding]) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    public struct Exchange: Sendable, Equatable {
        public enum Kind: String, Sendable { case direct, topic, fanout, headers }
        public var name: String
        public var kind: Kind
        public var durable = true
    }

    public struct Queue: Sendable, Equatable {
        public var name: String
        public var durable = true
        /// `x-*` arguments; see ``QueueArgument``.
        public var arguments: [String: QueueArgument]
    }

    public struct Binding: Sendable, Equatable {
        public var queue: String
        public var exchange: String
        public var routingKey: String
    }

    /// The argument values spotq uses (RabbitMQ's `x-*` queue arguments).
    public enum QueueArgument: Sendable, Equatable {
        case string(String)
        case int(Int)
    }
}

/// Names of spotq's broker objects.
public enum BrokerNames {
    /// Exchange and quorum queue where the website publishes image requests (JSON).
    public static let enqueueExchange = "spotq.enqueue"
    public static let enqueueQueue = "spotq.enqueue"
    /// Direct exchange routing one work item per image to its batch's queue.
    public static let workExchange = "spotq.work"
    /// Topic exchange for `asset.ready.<batch>`, `image.done.<batch>`, `pod.<state>.<batch>`, `metrics.demand`.
    public static let eventsExchange = "spotq.events"
    /// Topic exchange a pod republishes a failed work item to, routing key `spotq.batch.<id>`:
    /// bound to every batch queue with its own name, so a pod's topic permission (its own
    /// batch's key only) keeps its retries inside its batch. `spotq.work` is direct and
    /// cannot be limited by key, so pods may not write to it.
    public static let podRetryExchange = "spotq.pod.retry"
    /// Topic exchange a pod dead-letters work to, routing key `spotq.batch.<id>`; bound to
    /// `spotq.dead`. Pods may not write to `spotq.dlx`, whose letters the server trusts.
    public static let podDeadLetterExchange = "spotq.pod.dead"
    /// Where dead letters go, and the queue that keeps them.
    public static let deadLetterExchange = "spotq.dlx"
    public static let deadLetterQueue = "spotq.dead"
    /// Holds only the newest demand snapshot for the provisioner.
    public static let demandQueue = "spotq.demand"
    public static let demandRoutingKey = "metrics.demand"
    /// The server's queue of pod, asset and image events, recorded in `pod_events`.
    public static let eventsRecorderQueue = "spotq.events.recorder"
    public static let recordedEventKeys = ["asset.#", "image.#", "pod.#"]
    /// Header carrying a human-readable reason on messages spotq dead-letters itself.
    public static let reasonHeader = "x-spotq-reason"
    /// Where a message spotq dead-lettered itself was headed: exchange, routing key and the
    /// queue it was consumed from, so a replay can send it back.
    public static let originExchangeHeader = "x-spotq-origin-exchange"
    public static let originRoutingKeyHeader = "x-spotq-origin-routing-key"
    public static let originQueueHeader = "x-spotq-origin-queue"
    /// The validated `user_id` of the message a dead letter or retry copy was made from
    /// (the copy itself carries its publisher's user_id, as the broker requires).
    public static let publishedByHeader = "x-spotq-published-by"
    /// When spotq dead-lettered it (ISO 8601, UTC).
    public static let deadLetteredAtHeader = "x-spotq-dead-lettered-at"

    /// The quorum queue holding batch `id`'s work items; also its routing key on `spotq.work`.
    public static func batchQueue(_ id: Int64) -> String { "\(batchQueuePrefix)\(id)" }
    /// What every batch queue's name (and its work messages' routing key) starts with.
    public static let batchQueuePrefix = "spotq.batch."
}

/// Settings that shape the topology.
public struct BrokerTopologySettings: Sendable, Equatable {
    /// Redeliveries after which RabbitMQ itself dead-letters a work item. A backstop only:
    /// spotq counts real failures in PostgreSQL and dead-letters on its own, because a
    /// quorum queue also counts deliveries lost to reclaimed pods, which must never kill an image.
    public var workDeliveryLimit = 100
    /// Redeliveries of one enqueue message before it is dead-lettered (a request that
    /// keeps crashing the consumer is poison).
    public var enqueueDeliveryLimit = 10

    public init() {}
}

extension BrokerTopology {
    /// Everything declared at start. Batch queues are declared when batches are planned.
    public static func standard(_ settings: BrokerTopologySettings = .init()) -> BrokerTopology {
        BrokerTopology(
            exchanges: [
                Exchange(name: BrokerNames.enqueueExchange, kind: .topic),
                Exchange(name: BrokerNames.workExchange, kind: .direct),
                Exchange(name: BrokerNames.eventsExchange, kind: .topic),
                Exchange(name: BrokerNames.deadLetterExchange, kind: .fanout),
                Exchange(name: BrokerNames.podRetryExchange, kind: .topic),
                Exchange(name: BrokerNames.podDeadLetterExchange, kind: .topic),
            ],
            queues: [
                Queue(name: BrokerNames.enqueueQueue, arguments: quorumWithDeadLetters(deliveryLimit: settings.enqueueDeliveryLimit)),
                // No length cap: a dead letter is never dropped silently.
                Queue(name: BrokerNames.deadLetterQueue, arguments: ["x-queue-type": .string("quorum")]),
                Queue(name: BrokerNames.eventsRecorderQueue, arguments: quorumWithDeadLetters(deliveryLimit: settings.enqueueDeliveryLimit)),
                // Only the newest snapshot matters; older ones are dropped, not queued up.
                Queue(name: BrokerNames.demandQueue, arguments: [
                    "x-max-length": .int(1),
                    "x-overflow": .string("drop-head"),
                ]),
            ],
            bindings: [
                // Any routing key reaches the enqueue queue: websites need not know one.
                Binding(queue: BrokerNames.enqueueQueue, exchange: BrokerNames.enqueueExchange, routingKey: "#"),
                Binding(queue: BrokerNames.deadLetterQueue, exchange: BrokerNames.deadLetterExchange, routingKey: ""),
                Binding(queue: BrokerNames.deadLetterQueue, exchange: BrokerNames.podDeadLetterExchange, routingKey: BrokerNames.batchQueuePrefix + "*"),
                Binding(queue: BrokerNames.demandQueue, exchange: BrokerNames.eventsExchange, routingKey: BrokerNames.demandRoutingKey),
            ] + BrokerNames.recordedEventKeys.map {
                Binding(queue: BrokerNames.eventsRecorderQueue, exchange: BrokerNames.eventsExchange, routingKey: $0)
            })
    }

    /// The queue for one batch's work items and its bindings: on `spotq.work` (the planner's
    /// work) and on `spotq.pod.retry` (its pods' retries), both with the queue's name as key.
    public static func batch(_ id: Int64, settings: BrokerTopologySettings = .init()) -> (Queue, [Binding]) {
        let name = BrokerNames.batchQueue(id)
        return (
            Queue(name: name, arguments: quorumWithDeadLetters(deliveryLimit: settings.workDeliveryLimit)),
            [
                Binding(queue: name, exchange: BrokerNames.workExchange, routingKey: name),
                Binding(queue: name, exchange: BrokerNames.podRetryExchange, routingKey: name),
            ]
        )
    }

    /// A quorum queue that dead-letters to `spotq.dlx` at least once: RabbitMQ keeps a
    /// dead letter until `spotq.dead` has confirmed it (this needs `reject-publish`).
    public static func quorumWithDeadLetters(deliveryLimit: Int) -> [String: QueueArgument] {
        [
            "x-queue-type": .string("quorum"),
            "x-dead-letter-exchange": .string(BrokerNames.deadLetterExchange),
            "x-dead-letter-strategy": .string("at-least-once"),
            "x-overflow": .string("reject-publish"),
            "x-delivery-limit": .int(deliveryLimit),
        ]
    }
}
