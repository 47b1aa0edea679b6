import AMQPClient
import Foundation
import SpotqCore

extension AMQPOutgoingMessage {
    /// The copy of a refused message that spotq publishes to `spotq.dlx`: the original body
    /// and properties, plus headers saying why and where it came from.
    ///
    /// spotq publishes it itself (with a confirm) and then acks the original, rather than
    /// rejecting it, because a broker dead-letter carries no reason a person can read.
    public static func deadLetter(
        of delivery: AMQPDelivery, queue: String, exchange deadLetterExchange: String, reason: String, now: Date = Date()
    ) -> AMQPOutgoingMessage {
        deadLetter(of: ReceivedMessage(delivery), queue: queue, exchange: deadLetterExchange, reason: reason, now: now)
    }

    /// The dead-letter copy of a message already read from its delivery (see the overload
    /// taking an `AMQPDelivery`).
    public static func deadLetter(
        of received: ReceivedMessage, queue: String, exchange deadLetterExchange: String, reason: String, now: Date = Date()
    ) -> AMQPOutgoingMessage {
        var properties = received.properties.republished
        var headers = properties.headers ?? AMQPTable()
        headers[BrokerNames.reasonHeader] = .string(String(reason.prefix(4_000)))
        headers[BrokerNames.originExchangeHeader] = .string(received.exchange)
        headers[BrokerNames.originRoutingKeyHeader] = .string(received.routingKey)
        headers[BrokerNames.originQueueHeader] = .string(queue)
        headers[BrokerNames.deadLetteredAtHeader] = .string(ISO8601DateFormatter().string(from: now))
        properties.headers = headers
        properties.deliveryMode = .persistent
        return AMQPOutgoingMessage(
            exchange: deadLetterExchange, routingKey: received.routingKey, body: received.body, properties: properties)
    }
}
