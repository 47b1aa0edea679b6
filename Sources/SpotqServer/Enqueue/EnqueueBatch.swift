import AMQPClient
import SpotqBroker
import SpotqCore

/// The enqueue consumer's decisions for one batch, without I/O: which messages are valid
/// (to insert in one transaction), which are refused and why, and, once the insert's outcomes
/// are known, each delivery's decision and reply.
public struct EnqueueBatch: Sendable, Equatable {
    /// Each delivery's `request_id`, when it could be read.
    public var requestIDs: [String?]
    /// Refused deliveries' reasons, by index.
    public var refusals: [Int: String] = [:]
    /// The valid messages, with their indexes, in order.
    public var valid: [Valid] = []

    public struct Valid: Sendable, Equatable {
        public var index: Int
        public var message: EnqueueMessage
    }

    public init(_ messages: [ReceivedMessage], validator: EnqueueMessageValidator) {
        requestIDs = Array(repeating: nil, count: messages.count)
        for (index, message) in messages.enumerated() {
            switch validator.validate(
                body: message.body, contentType: message.properties.contentType,
                contentEncoding: message.properties.contentEncoding)
            {
            case .success(let valid):
                self.valid.append(Valid(index: index, message: valid))
                requestIDs[index] = valid.requestID
            case .failure(let rejection):
                refusals[index] = rejection.reason
                requestIDs[index] = rejection.requestID
            }
        }
    }

    /// Every delivery's outcome, given the insert's outcomes for ``valid`` (in order).
    public func outcomes(inserted: [EnqueueOutcome]) -> [EnqueueOutcome] {
        precondition(inserted.count == valid.count, "one insert outcome per valid message")
        var outcomes = requestIDs.indices.map { index in refusals[index].map { EnqueueOutcome.rejected(reason: $0) } }
        for (entry, outcome) in zip(valid, inserted) { outcomes[entry.index] = outcome }
        return outcomes.map { $0! }
    }

    /// Committed (new or duplicate) is acked; refused, by the validator or the database, is
    /// dead-lettered with its reason.
    public static func decisions(for outcomes: [EnqueueOutcome]) -> [DeliveryDecision] {
        outcomes.map { outcome in
            if case .rejected(let reason) = outcome { .deadLetter(reason: reason) } else { .ack }
        }
    }

    /// The batch is held while PostgreSQL cannot take it: not the messages' fault.
    public static func held(_ count: Int, because error: any Error) -> [DeliveryDecision] {
        Array(repeating: .hold(reason: "cannot write to PostgreSQL: \(error)"), count: count)
    }

    /// An ``EnqueueReply`` for each message with a `reply_to`, carrying its `correlation_id`.
    public static func replies(for messages: [ReceivedMessage], outcomes: [EnqueueOutcome], requestIDs: [String?]) -> [AMQPOutgoingMessage] {
        var replies: [AMQPOutgoingMessage] = []
        for (index, message) in messages.enumerated() {
            guard let replyTo = message.properties.replyTo, !replyTo.isEmpty else { continue }
            let reply = EnqueueReply(requestID: requestIDs[index], outcome: outcomes[index])
            replies.append(AMQPOutgoingMessage(
                exchange: "", routingKey: replyTo, body: reply.encoded(),
                properties: AMQPMessageProperties(
                    contentType: EnqueueMessage.contentType, deliveryMode: .transient,
                    correlationID: message.properties.correlationID)))
        }
        return replies
    }
}
