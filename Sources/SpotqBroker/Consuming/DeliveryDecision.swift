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
    /// The failure (or pod fault) that used up the message's budget: dead-lettered like
    /// ``deadLetter(reason:)``, its copy's `x-spotq-failures` set to `failures` (and
    /// `x-spotq-pod-faults` to `podFaults`, when any), so the headers count what the reason
    /// says (the delivery's own headers count what came before this attempt).
    case giveUp(failures: Int, podFaults: Int = 0, reason: String)
    /// Not the message's fault (the consumer's machine failed): republished like a retry, to
    /// the back of the queue, carrying `x-spotq-pod-faults = podFaults`
    /// (``DeliveryDecision/podFaultsHeader``) and its failure count unchanged; then the
    /// original is acked. The count bounds an item that faults every pod it meets.
    case handBack(podFaults: Int)
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

    /// The header a handed-back copy carries its pod-fault count in.
    public static let podFaultsHeader = "x-spotq-pod-faults"

    /// The pod faults a delivery's `x-spotq-pod-faults` header counts (0 without one).
    public static func podFaults(in properties: AMQPMessageProperties) -> Int {
        Int(properties.headers?[podFaultsHeader]?.intValue ?? 0)
    }
}
