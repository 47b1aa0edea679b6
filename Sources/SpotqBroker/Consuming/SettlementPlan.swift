import AMQPClient
import Foundation
import SpotqCore

/// What carrying out a group's decisions means on the wire, worked out without I/O: the
/// copies to publish (dead letters and retries, confirmed together before any ack) and, per
/// delivery, whether it is acked, requeued or kept held.
public struct SettlementPlan: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        case ack
        case requeue
        /// Left unacknowledged; offered to the handler again.
        case hold
    }

    /// Published with one `publishBatch`; every one must be confirmed before any ack.
    public var publishes: [AMQPOutgoingMessage] = []
    /// One per delivery, in order.
    public var actions: [Action] = []
    /// The first hold's reason, when anything is held.
    public var holdReason: String?

    /// - Parameters:
    ///   - queue: the queue the messages were consumed from (a dead letter's origin header).
    ///   - deadLetterExchange: where dead letters go.
    ///   - retryExchange: where retry copies go (nil: each delivery's own exchange).
    public init(messages: [ReceivedMessage], decisions: [DeliveryDecision], queue: String, deadLetterExchange: String, retryExchange: String? = nil, now: Date = Date()) {
        precondition(messages.count == decisions.count, "one decision per delivery")
        for (message, decision) in zip(messages, decisions) {
            switch decision {
            case .ack:
                actions.append(.ack)
            case .requeue:
                actions.append(.requeue)
            case .deadLetter(let reason):
                publishes.append(AMQPOutgoingMessage.deadLetter(of: message, queue: queue, exchange: deadLetterExchange, reason: reason, now: now))
                actions.append(.ack)
            case .giveUp(let failures, let podFaults, let reason):
                var copy = AMQPOutgoingMessage.deadLetter(of: message, queue: queue, exchange: deadLetterExchange, reason: reason, now: now)
                var headers = copy.properties.headers ?? AMQPTable()
                headers[DeliveryDecision.failuresHeader] = .int64(Int64(failures))
                if podFaults > 0 { headers[DeliveryDecision.podFaultsHeader] = .int64(Int64(podFaults)) }
                copy.properties.headers = headers
                publishes.append(copy)
                actions.append(.ack)
            case .retry(let failures):
                publishes.append(Self.retryCopy(of: message, failures: failures, exchange: retryExchange))
                actions.append(.ack)
            case .handBack(let podFaults):
                publishes.append(Self.retryCopy(of: message, setting: DeliveryDecision.podFaultsHeader, to: podFaults, exchange: retryExchange))
                actions.append(.ack)
            case .hold(let reason):
                if holdReason == nil { holdReason = reason }
                actions.append(.hold)
            }
        }
    }

    /// Indexes of the deliveries kept held.
    public var held: [Int] { actions.indices.filter { actions[$0] == .hold } }
    /// Indexes of the deliveries settled (acked or requeued).
    public var settled: [Int] { actions.indices.filter { actions[$0] != .hold } }

    /// The copy a retry republishes: same body and properties, the failure count in its
    /// header, to `exchange` (nil: the delivery's own) with the delivery's routing key,
    /// mandatory (a copy no queue takes comes back, and the original stays unacknowledged).
    public static func retryCopy(of message: ReceivedMessage, failures: Int, exchange: String? = nil) -> AMQPOutgoingMessage {
        retryCopy(of: message, setting: DeliveryDecision.failuresHeader, to: failures, exchange: exchange)
    }

    /// The same copy, with one count header set (the failures, or the pod faults).
    static func retryCopy(of message: ReceivedMessage, setting header: String, to count: Int, exchange: String?) -> AMQPOutgoingMessage {
        var properties = message.properties.republished
        var headers = properties.headers ?? AMQPTable()
        headers[header] = .int64(Int64(count))
        properties.headers = headers
        return AMQPOutgoingMessage(exchange: exchange ?? message.exchange, routingKey: message.routingKey, body: message.body, properties: properties, mandatory: true)
    }
}

extension AMQPMessageProperties {
    /// These properties on a copy spotq publishes itself (a dead letter, a retry): the
    /// original's validated `user_id` moves to `x-spotq-published-by`, and the copy goes out
    /// with its own publisher's (the broker refuses any other).
    public var republished: AMQPMessageProperties {
        var copy = self
        if let publisher = userID {
            var headers = copy.headers ?? AMQPTable()
            headers[BrokerNames.publishedByHeader] = .string(publisher)
            copy.headers = headers
        }
        copy.userID = nil
        return copy
    }
}
