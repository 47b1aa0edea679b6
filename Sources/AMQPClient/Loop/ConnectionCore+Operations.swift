internal import CRabbitMQ

// The channel operations AMQPChannel offers, as run on the connection thread.

extension ConnectionCore {
    func declareExchange(
        _ logicalID: Int, name: String, type: AMQPExchangeType, durable: Bool, autoDelete: Bool,
        isInternal: Bool, arguments: AMQPTable
    ) throws {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        let arena = CArena()
        try withExtendedLifetime(arena) {
            try rpc(record, wire: wire, "declaring exchange '\(name)'") {
                amqp_exchange_declare(
                    state, wire, arena.bytes(name), arena.bytes(type.name), 0, durable.c, autoDelete.c, isInternal.c,
                    arena.table(arguments))
            }
        }
    }

    func deleteExchange(_ logicalID: Int, name: String, ifUnused: Bool) throws {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        let arena = CArena()
        try withExtendedLifetime(arena) {
            try rpc(record, wire: wire, "deleting exchange '\(name)'") {
                amqp_exchange_delete(state, wire, arena.bytes(name), ifUnused.c)
            }
        }
    }

    func declareQueue(
        _ logicalID: Int, name: String, passive: Bool, durable: Bool, exclusive: Bool, autoDelete: Bool,
        arguments: AMQPTable
    ) throws -> AMQPQueueInfo {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        let arena = CArena()
        let activity = passive ? "checking queue '\(name)' (passive declare)" : "declaring queue '\(name)'"
        return try withExtendedLifetime(arena) {
            try rpc(record, wire: wire, activity) {
                amqp_queue_declare(
                    state, wire, arena.bytes(name), passive.c, durable.c, exclusive.c, autoDelete.c,
                    arena.table(arguments))
            } copy: { ok in
                AMQPQueueInfo(name: ok.queue.string, messageCount: Int(ok.message_count), consumerCount: Int(ok.consumer_count))
            }
        }
    }

    func deleteQueue(_ logicalID: Int, name: String, ifUnused: Bool, ifEmpty: Bool) throws -> Int {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        let arena = CArena()
        return try withExtendedLifetime(arena) {
            try rpc(record, wire: wire, "deleting queue '\(name)'") {
                amqp_queue_delete(state, wire, arena.bytes(name), ifUnused.c, ifEmpty.c)
            } copy: { Int($0.message_count) }
        }
    }

    func purgeQueue(_ logicalID: Int, name: String) throws -> Int {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        let arena = CArena()
        return try withExtendedLifetime(arena) {
            try rpc(record, wire: wire, "purging queue '\(name)'") {
                amqp_queue_purge(state, wire, arena.bytes(name))
            } copy: { Int($0.message_count) }
        }
    }

    func bindQueue(
        _ logicalID: Int, queue: String, exchange: String, routingKey: String, arguments: AMQPTable, unbind: Bool
    ) throws {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        let arena = CArena()
        try withExtendedLifetime(arena) {
            if unbind {
                try rpc(record, wire: wire, "unbinding queue '\(queue)' from exchange '\(exchange)'") {
                    amqp_queue_unbind(
                        state, wire, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table(arguments))
                }
            } else {
                try rpc(record, wire: wire, "binding queue '\(queue)' to exchange '\(exchange)'") {
                    amqp_queue_bind(
                        state, wire, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table(arguments))
                }
            }
        }
    }

    func qos(_ logicalID: Int, prefetchCount: UInt16, global: Bool) throws {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        try rpc(record, wire: wire, "setting QoS") { amqp_basic_qos(state, wire, 0, prefetchCount, global.c) }
        record.qos = (prefetchCount, global)
    }

    // MARK: Publishing

    /// Publishes every message with confirms on; `promise` completes when all are settled.
    func publishBatch(_ logicalID: Int, _ messages: [AMQPOutgoingMessage], promise: AsyncPromise<AMQPBatchOutcome>) throws {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        if !record.confirmMode {
            try rpc(record, wire: wire, "enabling publisher confirms") { amqp_confirm_select(state, wire) }
            record.confirmMode = true
        }
        guard !messages.isEmpty else {
            promise.succeed(AMQPBatchOutcome(count: 0))
            return
        }
        let token = nextToken
        nextToken += 1
        let waiter = PublishWaiter(
            promise: promise, logicalChannel: logicalID, count: messages.count,
            deadline: .now + configuration.confirmTimeout)
        publishWaiters[token] = waiter
        for message in messages {
            let sequence = record.confirms.register(token: token)
            if waiter.firstSequence == 0 { waiter.firstSequence = sequence }
            let status = publish(message, wire: wire)
            guard status == AMQP_STATUS_OK.rawValue else {
                // Part of a frame may be on the wire: the connection cannot go on. Tear-down
                // fails the waiter.
                markDead(libraryError(status, while: "publishing to exchange '\(message.exchange)'"))
                return
            }
        }
    }

    private func publish(_ message: AMQPOutgoingMessage, wire: UInt16) -> Int32 {
        let arena = CArena()
        var properties = message.properties.c(in: arena)
        return withExtendedLifetime(arena) {
            message.body.withUnsafeBytes { body in
                amqp_basic_publish(
                    state, wire, arena.bytes(message.exchange), arena.bytes(message.routingKey),
                    message.mandatory.c, 0, &properties,
                    amqp_bytes_t(len: body.count, bytes: body.count == 0 ? nil : UnsafeMutableRawPointer(mutating: body.baseAddress)))
            }
        }
    }

    // MARK: Consuming

    func consume(
        _ logicalID: Int, queue: String, consumerTag: String, exclusive: Bool, arguments: AMQPTable,
        buffer: ConsumerBuffer
    ) throws -> String {
        let record = try record(logicalID)
        let wire = try ensureOpen(record)
        let arena = CArena()
        let tag = try withExtendedLifetime(arena) {
            try rpc(record, wire: wire, "starting a consumer on queue '\(queue)'") {
                amqp_basic_consume(
                    state, wire, arena.bytes(queue), arena.bytes(consumerTag), 0, 0, exclusive.c, arena.table(arguments))
            } copy: { $0.consumer_tag.string }
        }
        buffer.tag = tag
        record.consumers[tag] = buffer
        return tag
    }

    /// `basic.cancel` for a consumer the application stopped, then requeues what it was
    /// delivered but never handed out.
    func cancelConsumer(_ logicalID: Int, _ buffer: ConsumerBuffer, sendCancel: Bool, leftovers: [AMQPDelivery]) throws {
        drainQueuedFrames()
        guard let record = channels[logicalID], let wire = record.wire else { return }
        let tag = buffer.tag
        if sendCancel, record.consumers[tag] === buffer {
            let arena = CArena()
            try withExtendedLifetime(arena) {
                try rpc(record, wire: wire, "cancelling consumer '\(tag)'") { amqp_basic_cancel(state, wire, arena.bytes(tag)) }
            }
            record.consumers[tag] = nil
        }
        for delivery in leftovers where delivery.route.generation == record.generation {
            let status = amqp_basic_reject(state, wire, delivery.deliveryTag, 1)
            if status < 0 {
                let error = libraryError(status, while: "requeueing deliveries of a cancelled consumer")
                markDead(error)
                throw error
            }
        }
    }

    func acknowledge(logicalChannel: Int, generation: Int, deliveryTag: UInt64, kind: AckKind) throws {
        drainQueuedFrames()
        if let deadError { throw deadError }
        guard let record = channels[logicalChannel], let wire = record.wire, record.generation == generation else {
            let cause = channels[logicalChannel]?.lastError
            throw AMQPError(
                code: .channelClosed,
                message: "cannot \(kind) delivery \(deliveryTag): the channel it came on has closed since, "
                    + "so the broker has requeued the message",
                replyCode: cause?.replyCode, replyText: cause?.replyText)
        }
        let status: Int32
        switch kind {
        case .ack: status = amqp_basic_ack(state, wire, deliveryTag, 0)
        case .nack(let requeue): status = amqp_basic_nack(state, wire, deliveryTag, 0, requeue.c)
        case .reject(let requeue): status = amqp_basic_reject(state, wire, deliveryTag, requeue.c)
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            let error = libraryError(status, while: "sending \(kind) for delivery \(deliveryTag)")
            markDead(error)
            throw error
        }
    }
}

extension Bool {
    /// As rabbitmq-c's `amqp_boolean_t`.
    var c: amqp_boolean_t { self ? 1 : 0 }
}
