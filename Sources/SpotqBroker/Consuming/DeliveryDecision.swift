import AMQPClient

/// What a handler decided for one delivery; ``QueueConsumer`` carries it out. A pure value,
/// so unit tests check a handler's decisions without a broker.
public enum DeliveryDecision: Sendable, Hashable {
    /// Done with: the broker forgets the message.
    case ack
    /// Back to the queue at once (`basic.nack`, requeue), e.g. work handed back by a pod.
    case requeue
    /// The message can never be handled: a copy (body, properties, plus the reason and origin
    /// headers `AMQPOutgoingMessage.deadLetter(of:…)` adds) is published to the dead-letter exchange with a publisher
    /// confirm, then the original is acked.
    case deadLetter(reason: String)
    /// This attempt failed, another may not: a copy carrying `x-spotq-failures = failures`
    /// (``DeliveryDecision/failuresHeader``) is republished to the delivery's own exchange
    /// and routing key (mandatory, confirmed), then the original is acked. The copy goes to
    /// the back of the queue.
    case retry(failures: Int)
    /// The failure that used up the message's budget: dead-lettered like ``deadLetter(reason:)``,
    /// its copy's `x-spotq-failures` set to `failures`, so the header counts what the reason
    /// says (the delivery's own header counts the failures before this one).
    case giveUp(failures: Int, reason: String)
    /// Not the message's fault (e.g. PostgreSQL away): the delivery stays unacknowledged and
    /// the shell hands it to the handler again after a backoff, for at most the hold limit;
    /// past it, everything in hand goes back to the queue (channel closed) and the shell
    /// waits for the handler's ``QueueHandler/ready()`` before consuming again.
    case hold(reason: String)

    /// The header a retried copy carries its failure count in.
    public static let failuresHeader = "x-spotq-failures"

    /// The failures a delivery's `x-spotq-failures` header counts (0 without one).
    public static func failures(in properties: AMQPMessageProperties) -> Int {
        Int(properties.headers?[failuresHeader]?.intValue ?? 0)
    }
}
