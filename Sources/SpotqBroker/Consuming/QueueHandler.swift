import AMQPClient

/// The part of a queue reader that knows what its messages mean. ``QueueConsumer`` owns the
/// channel, the reconnects, holding and dead-lettering; the handler only decides.
public protocol QueueHandler: Sendable {
    /// Decides for a group of deliveries (one at a time unless the consumer's configuration
    /// asks for batches); exactly one decision per delivery, in order. Called again with the
    /// deliveries it decided to ``DeliveryDecision/hold(reason:)``, after a backoff.
    func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision]
    /// Returns once the handler can work (e.g. PostgreSQL answers); the consumer calls it
    /// before every `basic.consume`, so a handler that cannot work holds nothing meanwhile.
    /// Must return or throw when its task is cancelled. Default: at once.
    func ready() async throws
    /// After the consumer carried out `decisions` for `deliveries` (acked, requeued, dead
    /// letters and retry copies confirmed); held deliveries are not among them. `channel` is
    /// the one they arrived on, for replies. Default: nothing.
    func settled(_ deliveries: [AMQPDelivery], _ decisions: [DeliveryDecision], on channel: AMQPChannel) async
}

extension QueueHandler {
    public func ready() async throws {}
    public func settled(_ deliveries: [AMQPDelivery], _ decisions: [DeliveryDecision], on channel: AMQPChannel) async {}
}
