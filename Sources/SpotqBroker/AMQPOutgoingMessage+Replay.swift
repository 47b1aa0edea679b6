import AMQPClient
import Foundation
import SpotqCore

/// Sending a recorded dead letter back to where it came from.
extension AMQPOutgoingMessage {
    /// Headers spotq or the broker add when dead-lettering; a replay leaves them out.
    static let deadLetterHeaders: Set<String> = [
        "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
        "x-last-death-reason", BrokerNames.reasonHeader, BrokerNames.originExchangeHeader, BrokerNames.originRoutingKeyHeader,
        BrokerNames.originQueueHeader, BrokerNames.deadLetteredAtHeader,
    ]

    /// The message a replay publishes to the origin: the original body and properties, the
    /// original headers (strings, integers, numbers and booleans) without the dead-letter
    /// ones, plus `x-spotq-replayed-from: <id>` (the id it was recorded under); persistent and
    /// mandatory, to `exchange` and `routingKey` (its recorded origin).
    public static func replay(of letter: DeadLetter, id: Int64, exchange: String, routingKey: String) -> AMQPOutgoingMessage {
        let stored = (try? JSONSerialization.jsonObject(with: Data(letter.propertiesJSON.utf8))) as? [String: String] ?? [:]
        var headers = AMQPTable()
        let original = (try? JSONDecoder().decode([String: HeaderValue].self, from: Data(letter.headersJSON.utf8))) ?? [:]
        for (key, value) in original.sorted(by: { $0.key < $1.key }) where !Self.deadLetterHeaders.contains(key) {
            if let field = value.field { headers[key] = field }
        }
        headers["x-spotq-replayed-from"] = .int64(id)
        let properties = AMQPMessageProperties(
            contentType: stored["content_type"], contentEncoding: stored["content_encoding"], headers: headers, deliveryMode: .persistent,
            correlationID: stored["correlation_id"], replyTo: stored["reply_to"], messageID: stored["message_id"], type: stored["type"],
            appID: stored["app_id"])
        return AMQPOutgoingMessage(exchange: exchange, routingKey: routingKey, body: letter.body, properties: properties, mandatory: true)
    }
}

/// A stored header value a replay can send again (nested tables and arrays are not).
enum HeaderValue: Decodable {
    case bool(Bool), integer(Int64), number(Double), string(String), other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let integer = try? container.decode(Int64.self) {
            self = .integer(integer)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else {
            self = .other
        }
    }

    var field: AMQPFieldValue? {
        switch self {
        case .bool(let flag): .bool(flag)
        case .integer(let integer): .int64(integer)
        case .number(let number): .double(number)
        case .string(let text): .string(text)
        case .other: nil
        }
    }
}
