import Foundation

/// What became of one enqueue request.
public enum EnqueueOutcome: Sendable, Equatable {
    /// A new pending row, with its id.
    case accepted(itemID: Int64)
    /// Its `request_id` was already in the queue; nothing was written.
    case duplicate
    /// Refused; nothing was written.
    case rejected(reason: String)

    public var label: String {
        switch self {
        case .accepted: "accepted"
        case .duplicate: "duplicate"
        case .rejected: "rejected"
        }
    }
}

/// The answer `spotq server` publishes to a message's `reply_to` queue (with its
/// `correlation_id`) once the request is committed or refused:
/// `{"version": 1, "request_id": "…", "outcome": "accepted", "item_id": 17}`, or
/// `"outcome": "duplicate"`, or `"outcome": "rejected", "reason": "…"`.
public struct EnqueueReply: Sendable, Equatable, Codable {
    public var version: Int
    public var requestID: String?
    public var outcome: String
    public var itemID: Int64?
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case version
        case requestID = "request_id"
        case outcome
        case itemID = "item_id"
        case reason
    }

    public init(requestID: String?, outcome: EnqueueOutcome) {
        self.version = EnqueueMessage.version
        self.requestID = requestID
        self.outcome = outcome.label
        switch outcome {
        case .accepted(let id): itemID = id
        case .duplicate: break
        case .rejected(let reason): self.reason = reason
        }
    }

    public var enqueueOutcome: EnqueueOutcome? {
        switch outcome {
        case "accepted": itemID.map { .accepted(itemID: $0) }
        case "duplicate": .duplicate
        case "rejected": .rejected(reason: reason ?? "no reason given")
        default: nil
        }
    }

    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data())
    }
}

/// Counts of a bulk enqueue and the reasons for refusals, grouped so a file with ten
/// thousand copies of one mistake prints one line.
public struct EnqueueSummary: Sendable, Equatable {
    public var accepted = 0
    public var duplicates = 0
    public var rejected = 0
    /// Refusals per reason, and the first few places (line numbers) each happened at.
    public var reasons: [String: (count: Int, places: [Int])] = [:]

    public init() {}

    public var total: Int { accepted + duplicates + rejected }

    public mutating func record(_ outcome: EnqueueOutcome, place: Int) {
        switch outcome {
        case .accepted: accepted += 1
        case .duplicate: duplicates += 1
        case .rejected(let reason):
            rejected += 1
            var entry = reasons[reason] ?? (0, [])
            entry.count += 1
            if entry.places.count < 5 { entry.places.append(place) }
            reasons[reason] = entry
        }
    }

    /// Reasons, most frequent first.
    public var reasonsByCount: [(reason: String, count: Int, places: [Int])] {
        reasons.map { ($0.key, $0.value.count, $0.value.places) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.reason < $1.reason }
    }

    public static func == (lhs: EnqueueSummary, rhs: EnqueueSummary) -> Bool {
        lhs.accepted == rhs.accepted && lhs.duplicates == rhs.duplicates && lhs.rejected == rhs.rejected
            && lhs.reasonsByCount.map { "\($0.reason)|\($0.count)|\($0.places)" } == rhs.reasonsByCount.map { "\($0.reason)|\($0.count)|\($0.places)" }
    }
}
