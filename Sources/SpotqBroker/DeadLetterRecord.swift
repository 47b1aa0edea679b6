import AMQPClient
import Foundation
import SpotqCore

/// Reading a dead letter from `spotq.dead`: spotq's own headers (`x-spotq-reason`,
/// `x-spotq-origin-*`) when spotq dead-lettered it, else the broker's `x-death` (delivery
/// limit reached, rejected, expired); and building its replay.
public enum DeadLetterRecord {
    public static func from(body: [UInt8], properties: AMQPMessageProperties, now: Date = Date()) -> DeadLetterContent {
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
        return DeadLetterContent(
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
            body: body)
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

    /// Headers spotq or the broker add when dead-lettering; a replay leaves them out.
    static let deadLetterHeaders: Set<String> = [
        "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
        "x-last-death-reason", BrokerNames.reasonHeader, BrokerNames.originExchangeHeader, BrokerNames.originRoutingKeyHeader,
        BrokerNames.originQueueHeader, BrokerNames.deadLetteredAtHeader,
    ]

    /// The message a replay publishes to the origin: the original body and properties, the
    /// original headers (strings, integers, numbers and booleans) without the dead-letter
    /// ones, plus `x-spotq-replayed-from: <id>`; persistent and mandatory.
    public static func replay(
        id: Int64, body: [UInt8], propertiesJSON: String, headersJSON: String, exchange: String, routingKey: String
    ) -> AMQPOutgoingMessage {
        let stored = (try? JSONSerialization.jsonObject(with: Data(propertiesJSON.utf8))) as? [String: String] ?? [:]
        var headers = AMQPTable()
        let original = (try? JSONDecoder().decode([String: HeaderValue].self, from: Data(headersJSON.utf8))) ?? [:]
        for (key, value) in original.sorted(by: { $0.key < $1.key }) where !deadLetterHeaders.contains(key) {
            if let field = value.field { headers[key] = field }
        }
        headers["x-spotq-replayed-from"] = .int64(id)
        let properties = AMQPMessageProperties(
            contentType: stored["content_type"], contentEncoding: stored["content_encoding"], headers: headers, deliveryMode: .persistent,
            correlationID: stored["correlation_id"], replyTo: stored["reply_to"], messageID: stored["message_id"], type: stored["type"],
            appID: stored["app_id"])
        return AMQPOutgoingMessage(exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: true)
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
