internal import CRabbitMQ
import Logging

// Inbound frames that are not RPC replies: deliveries, returns, confirms, cancels, closes.
// Every field is copied out before rabbitmq-c's pools are recycled.

extension ConnectionCore {
    func dispatch(_ frame: amqp_frame_t) {
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            if frame.channel == 0 {
                connectionMethod(frame.payload.method)
            } else {
                channelMethod(frame.payload.method, wire: frame.channel)
            }
        case AMQP_FRAME_HEADER:
            guard let record = wireChannels[frame.channel] else { return }
            let header = frame.payload.properties
            let properties = header.decoded.map {
                AMQPMessageProperties(c: $0.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
            } ?? .none
            assemble(record) { try $0.header(bodySize: header.body_size, properties: properties) }
        case AMQP_FRAME_BODY:
            guard let record = wireChannels[frame.channel] else { return }
            let fragment = frame.payload.body_fragment
            assemble(record) { try $0.body(UnsafeRawBufferPointer(start: fragment.bytes, count: fragment.len)) }
        default:
            break
        }
    }

    private func connectionMethod(_ method: amqp_method_t) {
        switch method.id {
        case AMQP_CONNECTION_CLOSE_METHOD:
            let error = connectionCloseError(method)
            sendConnectionCloseOk()
            markDead(error)
        case AMQP_CONNECTION_BLOCKED_METHOD:
            let reason = method.decoded?.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee.reason.string
            logger.warning("AMQP broker blocked this connection's publishes (resource alarm)", metadata: ["reason": "\(reason ?? "")"])
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            logger.info("AMQP broker unblocked this connection")
        default:
            logger.debug("AMQP ignored connection method 0x\(String(method.id, radix: 16))")
        }
    }

    private func channelMethod(_ method: amqp_method_t, wire: UInt16) {
        guard let record = wireChannels[wire] else {
            // A channel we closed or gave up on; only a close needs an answer.
            if method.id == AMQP_CHANNEL_CLOSE_METHOD { sendChannelCloseOk(wire) }
            return
        }
        let decoded = method.decoded
        switch method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let deliver = DeliverMethod(
                consumerTag: m.consumer_tag.string, deliveryTag: m.delivery_tag, redelivered: m.redelivered != 0,
                exchange: m.exchange.string, routingKey: m.routing_key.string)
            assemble(record) { try $0.begin(.deliver(deliver)); return nil }
        case AMQP_BASIC_RETURN_METHOD:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let info = ReturnInfo(
                replyCode: Int(m.reply_code), replyText: m.reply_text.string,
                exchange: m.exchange.string, routingKey: m.routing_key.string)
            assemble(record) { try $0.begin(.returned(info)); return nil }
        case AMQP_BASIC_ACK_METHOD:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(record, record.confirms.settle(tag: m.delivery_tag, multiple: m.multiple != 0, ack: true))
        case AMQP_BASIC_NACK_METHOD:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(record, record.confirms.settle(tag: m.delivery_tag, multiple: m.multiple != 0, ack: false))
        case AMQP_BASIC_CANCEL_METHOD:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = m.consumer_tag.string
            if m.nowait == 0 {
                var ok = amqp_basic_cancel_ok_t(consumer_tag: m.consumer_tag)
                _ = amqp_send_method(state, wire, AMQP_BASIC_CANCEL_OK_METHOD, &ok)
            }
            if let consumer = record.consumers.removeValue(forKey: tag) {
                logger.info("AMQP consumer cancelled by the broker", metadata: ["consumer": "\(tag)"])
                consumer.finish(
                    AMQPError(
                        code: .consumerCancelled,
                        message: "the broker cancelled consumer '\(tag)' (its queue was deleted or failed over); consume again"),
                    dropBuffered: false)
            }
        case AMQP_CHANNEL_CLOSE_METHOD:
            let m = decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = AMQPError(
                code: .channelClosed, message: "the broker closed channel \(wire)",
                replyCode: Int(m.reply_code), replyText: m.reply_text.string)
            sendChannelCloseOk(wire)
            channelLost(record, error)
        case AMQP_CHANNEL_FLOW_METHOD:
            let active = decoded!.assumingMemoryBound(to: amqp_channel_flow_t.self).pointee.active
            var ok = amqp_channel_flow_ok_t(active: active)
            _ = amqp_send_method(state, wire, AMQP_CHANNEL_FLOW_OK_METHOD, &ok)
            logger.info("AMQP broker asked for channel flow \(active != 0 ? "on" : "off")", metadata: [AMQPLogMetadata.channel: "\(wire)"])
        default:
            logger.debug("AMQP ignored channel method 0x\(String(method.id, radix: 16))", metadata: [AMQPLogMetadata.channel: "\(wire)"])
        }
    }

    /// Feeds the channel's content assembler; a protocol violation ends the connection.
    private func assemble(
        _ record: ChannelRecord,
        _ step: (inout ContentAssembler) throws -> ContentAssembler.Content?
    ) {
        let content: ContentAssembler.Content?
        do {
            content = try step(&record.assembler)
        } catch {
            markDead(AMQPError(code: .protocolError, message: "broken content from the broker: \((error as? ContentAssembler.Violation)?.description ?? "\(error)")"))
            return
        }
        guard let content, let wire = record.wire else { return }
        switch content.method {
        case .deliver(let m):
            let delivery = AMQPDelivery(
                body: content.body, properties: content.properties, deliveryTag: m.deliveryTag,
                redelivered: m.redelivered, exchange: m.exchange, routingKey: m.routingKey, consumerTag: m.consumerTag,
                route: AckRoute(handle: handle, logicalChannel: record.logicalID, generation: record.generation))
            if let consumer = record.consumers[m.consumerTag], consumer.push(delivery) { return }
            // The consumer is gone or stopping: give the message back at once.
            let status = amqp_basic_reject(state, wire, m.deliveryTag, 1)
            if status < 0 { markDead(libraryError(status, while: "requeueing a delivery for a cancelled consumer")) }
        case .returned(let info):
            record.confirms.returned(info)
        }
    }

    private func confirm(_ record: ChannelRecord, _ settlements: [ConfirmTracker.Settlement]) {
        for settlement in settlements {
            guard let waiter = publishWaiters[settlement.token] else { continue }
            let index = Int(settlement.sequence - waiter.firstSequence)
            switch settlement.outcome {
            case .acked: break
            case .nacked: waiter.nacked.append(index)
            case .returned(let info):
                waiter.returned.append(AMQPReturnedMessage(
                    index: index, replyCode: info.replyCode, replyText: info.replyText,
                    exchange: info.exchange, routingKey: info.routingKey))
            }
            waiter.remaining -= 1
            if waiter.remaining == 0 {
                publishWaiters[settlement.token] = nil
                waiter.promise.succeed(waiter.outcome)
            }
        }
    }
}
