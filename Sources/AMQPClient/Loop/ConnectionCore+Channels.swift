internal import CRabbitMQ
import Logging

// Channel lifecycle on the connection thread: open, recover after a broker close, close, and
// the RPC helper that turns rabbitmq-c replies into AMQPError.

extension ConnectionCore {
    func record(_ logicalID: Int) throws -> ChannelRecord {
        guard let record = channels[logicalID] else { throw AMQPError.closedByApplication("channel") }
        return record
    }

    /// Creates a logical channel and opens it on the wire.
    func openChannel(_ logicalID: Int) throws {
        let record = ChannelRecord(logicalID: logicalID)
        channels[logicalID] = record
        do {
            _ = try ensureOpen(record)
        } catch {
            channels[logicalID] = nil
            throw error
        }
    }

    /// The channel's wire number, (re)opening it first when the broker closed it, with the
    /// confirm mode and QoS it had.
    func ensureOpen(_ record: ChannelRecord) throws -> UInt16 {
        if record.closedByApplication { throw AMQPError.closedByApplication("channel") }
        // rabbitmq-c's RPC calls never look at frames queued during earlier RPCs: a
        // `channel.close` waiting there would leave the next RPC on that channel hanging until
        // its timeout. Dispatching the queue first also keeps frames meant for an earlier
        // channel with a reused number away from the new one.
        drainQueuedFrames()
        if let deadError { throw deadError }
        if let wire = record.wire { return wire }
        let wire = try allocateWireNumber()
        try rpc(nil, wire: wire, "opening channel \(wire)") { amqp_channel_open(state, wire) }
        record.wire = wire
        record.generation += 1
        record.assembler.reset()
        wireChannels[wire] = record
        if record.generation > 1 {
            logger.debug("AMQP channel reopened after the broker closed it", metadata: [AMQPLogMetadata.channel: "\(wire)"])
        }
        if record.confirmMode {
            try rpc(record, wire: wire, "enabling publisher confirms") { amqp_confirm_select(state, wire) }
        }
        if let qos = record.qos {
            try rpc(record, wire: wire, "setting QoS") {
                amqp_basic_qos(state, wire, 0, qos.prefetchCount, qos.global ? 1 : 0)
            }
        }
        return wire
    }

    private func allocateWireNumber() throws -> UInt16 {
        for candidate in 1...channelMax where wireChannels[candidate] == nil {
            return candidate
        }
        throw AMQPError(
            code: .invalidArgument,
            message: "all \(channelMax) channels of this connection are open; close some before opening more")
    }

    /// The broker closed the channel (or it failed): fail its pending confirms, end its
    /// consumers with `error`, and leave the record to be reopened on next use.
    func channelLost(_ record: ChannelRecord, _ error: AMQPError) {
        if let wire = record.wire {
            wireChannels[wire] = nil
            logger.info(
                "AMQP channel closed by the broker",
                metadata: [AMQPLogMetadata.channel: "\(wire)", AMQPLogMetadata.error: "\(error)"])
        }
        record.wire = nil
        record.lastError = error
        record.assembler.reset()
        failPublishes(of: record, error)
        for consumer in record.consumers.values { consumer.finish(error, dropBuffered: true) }
        record.consumers = [:]
    }

    func failPublishes(of record: ChannelRecord, _ error: AMQPError) {
        for token in record.confirms.reset() {
            publishWaiters.removeValue(forKey: token)?.promise.fail(error)
        }
    }

    /// Closes the channel for good (`channel.close`); its consumers end normally.
    func closeChannel(_ logicalID: Int) throws {
        guard let record = channels.removeValue(forKey: logicalID) else { return }
        record.closedByApplication = true
        let closed = AMQPError.closedByApplication("channel")
        for consumer in record.consumers.values { consumer.finish(nil, dropBuffered: true) }
        record.consumers = [:]
        failPublishes(of: record, closed)
        drainQueuedFrames()
        guard let wire = record.wire, deadError == nil else { return }
        record.wire = nil
        defer { wireChannels[wire] = nil }
        let reply = amqp_channel_close(state, wire, AMQP_REPLY_SUCCESS)
        try check(reply, record: nil, wire: wire, "closing channel \(wire)")
        amqp_maybe_release_buffers_on_channel(state, wire)
    }

    // MARK: RPC

    /// Runs a synchronous AMQP method through one of rabbitmq-c's typed RPC wrappers (which
    /// return the reply or NULL) and copies what is needed out of the reply before rabbitmq-c's
    /// channel pool is recycled.
    @discardableResult
    func rpc<Reply, Value>(
        _ record: ChannelRecord?, wire: UInt16, _ activity: @autoclosure () -> String,
        _ call: () -> UnsafeMutablePointer<Reply>?, copy: (Reply) -> Value
    ) throws -> Value {
        let result = call()
        let reply = amqp_get_rpc_reply(state)
        defer { if deadError == nil { amqp_maybe_release_buffers_on_channel(state, wire) } }
        try check(reply, record: record, wire: wire, activity())
        guard let result else {
            let error = AMQPError(code: .protocolError, message: "rabbitmq-c returned no reply while \(activity())")
            markDead(error)
            throw error
        }
        return copy(result.pointee)
    }

    func rpc<Reply>(
        _ record: ChannelRecord?, wire: UInt16, _ activity: @autoclosure () -> String,
        _ call: () -> UnsafeMutablePointer<Reply>?
    ) throws {
        try rpc(record, wire: wire, activity(), call, copy: { _ in () })
    }

    /// Turns an RPC reply into success or an error, doing what the protocol asks on the way:
    /// `channel.close` is answered and the channel recovered, `connection.close` is answered
    /// and the connection ends.
    func check(_ reply: amqp_rpc_reply_t, record: ChannelRecord?, wire: UInt16, _ activity: String) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            lastInbound = .now
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD:
            let close = reply.reply.decoded?.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = AMQPError(
                code: .channelClosed,
                message: "the broker closed the channel while \(activity)",
                replyCode: close.map { Int($0.reply_code) }, replyText: close?.reply_text.string)
            sendChannelCloseOk(wire)
            if let record { channelLost(record, error) }
            throw error
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD:
            let error = connectionCloseError(reply.reply)
            sendConnectionCloseOk()
            markDead(error)
            throw error
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let error = libraryError(reply.library_error, while: activity)
            markDead(error)
            throw error
        default:
            let error = AMQPError(
                code: .protocolError,
                message: "unexpected reply (type \(reply.reply_type.rawValue), method 0x\(String(reply.reply.id, radix: 16))) while \(activity)")
            markDead(error)
            throw error
        }
    }
}
