/// A channel on an ``AMQPConnection``: declarations, publishing with confirms, consuming.
///
/// When the broker closes the channel because of an error (a missing queue in a passive
/// declare, a publish to a missing exchange, an unknown delivery tag), the call that caused it
/// throws `channelClosed` with the broker's reply text, the channel's consumers end with that
/// error, and the channel reopens itself on its next use, restoring confirm mode and QoS.
/// Deliveries received before the close can no longer be acknowledged. Dropping the last
/// reference closes the channel, so keep the channel (or its ``AMQPConsumer``, which holds
/// it) until its deliveries are acknowledged.
public final class AMQPChannel: Sendable {
    public let connection: AMQPConnection
    let id: Int

    init(connection: AMQPConnection, id: Int) {
        self.connection = connection
        self.id = id
    }

    deinit {
        let id = self.id
        connection.handle.submit { core in try? core.closeChannel(id) }
    }

    private func perform<T: Sendable>(_ body: @escaping @Sendable (ConnectionCore, Int) throws -> T) async throws -> T {
        let id = self.id
        return try await connection.handle.perform { core in try body(core, id) }
    }

    /// Closes the channel (`channel.close`). Its consumers end normally; publishes still
    /// waiting for confirms fail with code `closed`. Safe to call more than once.
    public func close() async throws {
        do {
            try await perform { core, id in try core.closeChannel(id) }
        } catch let error as AMQPError where error.code == .channelClosed || error.code == .closed {
            // Closed already, one way or the other.
        }
    }

    // MARK: Exchanges and queues

    public func declareExchange(
        _ name: String, type: AMQPExchangeType, durable: Bool = true, autoDelete: Bool = false,
        internal isInternal: Bool = false, arguments: AMQPTable = [:]
    ) async throws {
        try await perform { core, id in
            try core.declareExchange(
                id, name: name, type: type, durable: durable, autoDelete: autoDelete, isInternal: isInternal, arguments: arguments)
        }
    }

    public func deleteExchange(_ name: String, ifUnused: Bool = false) async throws {
        try await perform { core, id in try core.deleteExchange(id, name: name, ifUnused: ifUnused) }
    }

    /// Declares a queue (idempotent when the arguments match; a mismatch is a
    /// `channelClosed` error with PRECONDITION_FAILED). Quorum queues, dead-lettering and
    /// limits are arguments: `["x-queue-type": "quorum", "x-dead-letter-exchange": "dlx",
    /// "x-delivery-limit": 5, "x-max-length": 1000, "x-overflow": "reject-publish"]`.
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: AMQPTable = [:]
    ) async throws -> AMQPQueueInfo {
        try await perform { core, id in
            try core.declareQueue(
                id, name: name, passive: false, durable: durable, exclusive: exclusive, autoDelete: autoDelete,
                arguments: arguments)
        }
    }

    /// Reports a queue's ready-message and consumer counts without changing it. A missing
    /// queue throws `channelClosed` with the broker's `NOT_FOUND - …` text; the channel
    /// stays usable.
    public func declareQueuePassive(_ name: String) async throws -> AMQPQueueInfo {
        try await perform { core, id in
            try core.declareQueue(
                id, name: name, passive: true, durable: false, exclusive: false, autoDelete: false, arguments: [:])
        }
    }

    /// Deletes a queue; returns how many messages it held.
    @discardableResult
    public func deleteQueue(_ name: String, ifUnused: Bool = false, ifEmpty: Bool = false) async throws -> Int {
        try await perform { core, id in try core.deleteQueue(id, name: name, ifUnused: ifUnused, ifEmpty: ifEmpty) }
    }

    /// Removes every ready message from a queue; returns how many.
    @discardableResult
    public func purgeQueue(_ name: String) async throws -> Int {
        try await perform { core, id in try core.purgeQueue(id, name: name) }
    }

    public func bindQueue(_ queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) async throws {
        try await perform { core, id in
            try core.bindQueue(id, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments, unbind: false)
        }
    }

    public func unbindQueue(_ queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) async throws {
        try await perform { core, id in
            try core.bindQueue(id, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments, unbind: true)
        }
    }

    /// `basic.qos`: at most `prefetchCount` unacknowledged deliveries per consumer on this
    /// channel (per channel when `global`); 0 means no limit. Reapplied when the channel reopens.
    public func qos(prefetchCount: UInt16, global: Bool = false) async throws {
        try await perform { core, id in try core.qos(id, prefetchCount: prefetchCount, global: global) }
    }

    // MARK: Publishing

    /// Publishes every message (the channel is put in confirm mode), then waits until the
    /// broker has confirmed each one, up to the configured confirm timeout. Nacked and
    /// returned messages are reported, not thrown; a channel or connection failure before
    /// every confirm arrived throws, and the fate of the unconfirmed messages is then unknown.
    ///
    /// A message without a `user_id` is sent with the connection's login as its `user_id`,
    /// so consumers can know who published it: RabbitMQ refuses a `user_id` other than the
    /// login (a channel error), so a copy of someone else's message must clear it.
    public func publishBatch(_ messages: [AMQPOutgoingMessage]) async throws -> AMQPBatchOutcome {
        let id = self.id
        let user = connection.endpoint.user
        let messages = messages.map { message in
            guard message.properties.userID == nil else { return message }
            var stamped = message
            stamped.properties.userID = user
            return stamped
        }
        return try await connection.handle.performDeferred { core, promise in
            try core.publishBatch(id, messages, promise: promise)
        }
    }

    /// Publishes one message and returns once the broker has confirmed it. Throws
    /// `publishNacked`, `publishReturned` (a mandatory message no queue took, with the
    /// broker's reply code and text, e.g. 312 NO_ROUTE) or the channel's / connection's error.
    public func publish(_ message: AMQPOutgoingMessage) async throws {
        let outcome = try await publishBatch([message])
        if let returned = outcome.returned.first {
            throw AMQPError(
                code: .publishReturned,
                message: "the broker returned the message sent to exchange '\(message.exchange)' with routing key "
                    + "'\(message.routingKey)': no queue is bound for it",
                replyCode: returned.replyCode, replyText: returned.replyText)
        }
        if !outcome.nacked.isEmpty {
            throw AMQPError(
                code: .publishNacked,
                message: "the broker refused the message sent to exchange '\(message.exchange)' (basic.nack), "
                    + "e.g. a full queue with x-overflow reject-publish; publish it again later")
        }
    }

    public func publish(
        exchange: String, routingKey: String, body: [UInt8],
        properties: AMQPMessageProperties = AMQPMessageProperties(), mandatory: Bool = false
    ) async throws {
        try await publish(AMQPOutgoingMessage(
            exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: mandatory))
    }

    // MARK: Consuming

    /// Starts a consumer with manual acknowledgement (`basic.consume`) and returns its
    /// deliveries as an async sequence. An empty `consumerTag` lets the broker choose one.
    public func consume(
        queue: String, consumerTag: String = "", exclusive: Bool = false, arguments: AMQPTable = [:]
    ) async throws -> AMQPConsumer {
        let buffer = ConsumerBuffer()
        let handle = connection.handle
        let id = self.id
        buffer.cancelInBackground = { [weak buffer] sendCancel, leftovers in
            guard let buffer else { return }
            handle.submit { core in
                try? core.cancelConsumer(id, buffer, sendCancel: sendCancel, leftovers: leftovers)
            }
        }
        do {
            let tag = try await perform { core, id in
                try core.consume(id, queue: queue, consumerTag: consumerTag, exclusive: exclusive, arguments: arguments, buffer: buffer)
            }
            return AMQPConsumer(tag: tag, channel: self, buffer: buffer)
        } catch is CancellationError {
            // The consume job may still run; this queues its cancellation right behind it.
            buffer.requestCancel()
            throw CancellationError()
        }
    }
}
