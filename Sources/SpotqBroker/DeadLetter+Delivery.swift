import AMQPClient
import Foundation
import SpotqCore

/// Reading a dead letter from `spotq.dead`: spotq's own headers (`x-spotq-reason`,
/// `x-spotq-origin-*`) when spotq dead-lettered it, else the broker's `x-death` (delivery
/// limit reached, rejected, expired).
extension DeadLetter {
    /// A delivery from `spotq.dead`, read (see ``init(body:properties:now:)``).
    public init(delivery: AMQPDelivery, now: Date = Date()) {
        self.init(body: delivery.body, properties: delivery.properties, now: now)
    }

    /// A dead letter read from its body and properties; `now` is its time when no header
    /// carries one.
    public init(body: [UInt8], properties: AMQPMessageProperties, now: Date = Date()) {
        let headers = properties.headers ?? AMQPTable()
        // The broker's most recent death is first in x-death.
        let death = headers["x-death"]?.arrayValue?.first?.tableValue
        let spotqReason = headers[BrokerNames.reasonHeader]?.stringValue
        let reason = spotqReason ?? death?["reason"]?.stringValue.map { "broker: \($0)" } ?? "no reason recorded"
        let routingKeys = death?["routing-keys"]?.arrayValue?.compactMap(\.stringValue)
        var at = now
        if let text = headers[BrokerNames.deadLetteredAtHeader]?.stringValue, let parsed = ISO8601DateFormatter().date(from: text) {
            at = parsed
        } else if case .timestamp(let time)? = death?["time"] {
            at = time
        }
        self.init(
            reason: reason,
            originExchange: headers[BrokerNames.originExchangeHeader]?.stringValue ?? death?["exchange"]?.stringValue,
            originRoutingKey: headers[BrokerNames.originRoutingKeyHeader]?.stringValue ?? routingKeys?.first,
            originQueue: headers[BrokerNames.originQueueHeader]?.stringValue ?? death?["queue"]?.stringValue,
            deathCount: max(1, Int(death?["count"]?.intValue ?? 1)),
            deadLetteredAt: at, messageID: properties.messageID, contentType: properties.contentType,
            headersJSON: String(decoding: Self.json(.table(headers)).serialized(), as: UTF8.self),
            propertiesJSON: String(decoding: JSONValue.object([
                ("content_type", properties.contentType), ("content_encoding", properties.contentEncoding), ("correlation_id", properties.correlationID),
                ("reply_to", properties.replyTo), ("message_id", properties.messageID), ("type", properties.type), ("app_id", properties.appID),
            ].compactMap { key, value in value.map { (key, JSONValue.string($0)) } }).serialized(), as: UTF8.self),
            body: body, deadLetteredBy: properties.userID)
    }

    /// Headers as JSON: strings, numbers, booleans, times (ISO 8601), tables and arrays;
    /// bytes as `{"base64": …}`.
    static func json(_ value: AMQPFieldValue) -> JSONValue {
        switch value {
        case .bool(let flag): return .bool(flag)
        case .float(let number): return .number(Double(number))
        case .double(let number): return .number(number)
        case .decimal(let scale, let raw): return .number(Double(raw) / pow(10, Double(scale)))
        case .string(let text): return .string(text)
        case .bytes(let bytes): return .object([("base64", .string(Data(bytes).base64EncodedString()))])
        case .timestamp(let date): return .string(ISO8601DateFormatter().string(from: date))
        case .table(let table): return .object(table.keys.sorted().map { ($0, json(table[$0]!)) })
        case .array(let values): return .array(values.map(json))
        case .void: return .null
        default: return value.intValue.map { .integer($0) } ?? .null
        }
    }
}
