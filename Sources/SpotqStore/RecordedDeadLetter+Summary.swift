import Foundation

extension RecordedDeadLetter {
    /// What the ops dashboard shows of one dead letter: its id, reason, origin queue, time,
    /// replays, and the first 300 bytes of its body as text. Encodes as `id`, `reason`,
    /// `origin_queue` (left out when unknown), `dead_lettered_at`, `replay_count`, `body`.
    public struct Summary: Sendable, Equatable, Encodable {
        public var id: Int64
        public var reason: String
        public var originQueue: String?
        public var deadLetteredAt: Date
        public var replayCount: Int
        public var body: String

        /// How much of the body the dashboard shows, in bytes.
        public static let bodyBytes = 300

        public init(_ recorded: RecordedDeadLetter) {
            id = recorded.id
            reason = recorded.reason
            originQueue = recorded.originQueue
            deadLetteredAt = recorded.deadLetteredAt
            replayCount = recorded.replayCount
            body = String(decoding: recorded.body.prefix(Self.bodyBytes), as: UTF8.self)
        }

        enum CodingKeys: String, CodingKey {
            case id, reason, originQueue = "origin_queue", deadLetteredAt = "dead_lettered_at", replayCount = "replay_count", body
        }
    }

    /// What the dashboard shows of it.
    public var summary: Summary { Summary(self) }
}
