import Foundation

/// An event a pod (or the provisioner) publishes to `spotq.events`, version 1:
///
/// ```json
/// {"version": 1, "event_key": "pod-abc:17", "kind": "image.failed", "batch_id": 7, "item_id": 1234,
///  "pod": {"provider": "runpod", "id": "abc"}, "detail": {"reason": "…", "final": false},
///  "occurred_at": "2026-11-23T17:00:00Z"}
/// ```
///
/// Routing keys: `asset.ready.<batch>`, `image.started.<batch>`, `image.done.<batch>`,
/// `image.failed.<batch>`, `image.interrupted.<batch>`, `pod.heartbeat.<batch>`,
/// `pod.<state>.<batch>` (kind `state`, with `state`): every key ends in the batch, so a pod's
/// topic permission can hold it to its own. `event_key` makes a redelivered copy a no-op.
public struct SpotqEvent: Sendable, Equatable, Codable {
    public struct Pod: Sendable, Equatable, Codable {
        public var provider: String
        public var id: String

        public init(provider: String, id: String) {
            self.provider = provider
            self.id = id
        }
    }

    public var version = 1
    public var eventKey: String
    public var kind: EventKind
    public var batchID: Int64?
    public var itemID: Int64?
    public var pod: Pod
    /// For kind ``EventKind/state``: the state the pod reports.
    public var state: PodState?
    public var detail: [String: JSONScalar]
    public var occurredAt: Date

    public init(eventKey: String, kind: EventKind, batchID: Int64?, itemID: Int64? = nil, pod: Pod, state: PodState? = nil, detail: [String: JSONScalar] = [:], occurredAt: Date = Date()) {
        self.eventKey = eventKey
        self.kind = kind
        self.batchID = batchID
        self.itemID = itemID
        self.pod = pod
        self.state = state
        self.detail = detail
        self.occurredAt = occurredAt
    }

    enum CodingKeys: String, CodingKey {
        case version
        case eventKey = "event_key"
        case kind
        case batchID = "batch_id"
        case itemID = "item_id"
        case pod, state, detail
        case occurredAt = "occurred_at"
    }

    /// The routing key this event is published with.
    public var routingKey: String {
        let batch = batchID.map(String.init) ?? "none"
        return kind == .state ? "pod.\(state.map(\.rawValue) ?? "unknown").\(batch)" : "\(kind.rawValue).\(batch)"
    }

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}

/// A JSON value without nesting, for event details.
public enum JSONScalar: Sendable, Equatable, Codable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null } else if let value = try? container.decode(Bool.self) { self = .bool(value) } else if let value = try? container.decode(Double.self) { self = .number(value) } else { self = .string(try container.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    public var stringValue: String? { if case .string(let value) = self { value } else { nil } }
    public var boolValue: Bool? { if case .bool(let value) = self { value } else { nil } }
}
