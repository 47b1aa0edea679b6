/// The deliveries of one `basic.consume`, as an async sequence. Iterate it once.
///
/// The sequence ends normally after ``cancel()``, when the iterating loop stops (`break`,
/// the iterator is dropped) or when the channel/connection is closed by this application; each
/// of the first two sends `basic.cancel` and requeues deliveries received but not yet handed
/// out. It throws ``AMQPError/Code-swift.struct/consumerCancelled`` when the broker cancels
/// the consumer (its queue was deleted), the broker's `channelClosed` / `connectionClosed`
/// error when those die, and `CancellationError` when the iterating task is cancelled.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery

    /// The consumer tag (the broker's choice when an empty one was asked for).
    public let tag: String
    /// The channel the consumer lives on; kept open while the consumer is referenced.
    public let channel: AMQPChannel
    let buffer: ConsumerBuffer

    /// Sends `basic.cancel` and waits for the broker's answer; the sequence then ends
    /// normally. Deliveries not yet handed out are requeued. Safe to call more than once.
    public func cancel() async {
        buffer.requestCancel()
        // The cancel job was queued before this barrier, so it has run when this returns.
        _ = try? await channel.connection.handle.perform { _ in }
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(buffer: buffer, lifetime: IteratorLifetime(buffer: buffer))
    }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let buffer: ConsumerBuffer
        let lifetime: IteratorLifetime

        public mutating func next() async throws -> AMQPDelivery? {
            try await buffer.next()
        }

        /// Waits for the next delivery like ``next()``, then adds those that already
        /// arrived behind it, up to `max` in all, without waiting for more: a consumer
        /// that handles deliveries in batches (one database transaction for many) gets
        /// large batches under load and no added latency when idle. Nil when the consumer ended.
        public mutating func nextBatch(max: Int) async throws -> [AMQPDelivery]? {
            guard let first = try await buffer.next() else { return nil }
            return [first] + buffer.takeBuffered(max: max - 1)
        }
    }
}

/// Cancels the consumer when the last copy of its iterator goes away (the loop stopped).
final class IteratorLifetime: Sendable {
    let buffer: ConsumerBuffer

    init(buffer: ConsumerBuffer) {
        self.buffer = buffer
    }

    deinit {
        buffer.requestCancel()
    }
}
