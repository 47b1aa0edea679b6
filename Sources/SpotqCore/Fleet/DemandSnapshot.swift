import Foundation

/// What the fleet should serve right now, published by the server as `metrics.demand` on
/// `spotq.events` and read by the provisioner from `spotq.demand`, which keeps only the
/// newest one.
public struct DemandSnapshot: Sendable, Equatable, Codable {
    public var version = 1
    public var takenAt: Date
    public var batches: [BatchDemand]
    /// Pending items not yet planned into a batch, by checkpoint.
    public var unplanned: [CheckpointDemand]

    public struct BatchDemand: Sendable, Equatable, Codable {
        public var batchID: Int64
        /// Messages waiting in the batch's queue.
        public var ready: Int
        /// Items handed to a pod and not yet settled (remaining items minus ready messages).
        public var unacknowledged: Int
        /// Consumers on the batch's queue (running workers).
        public var consumers: Int
        /// Items neither done nor failed.
        public var remainingItems: Int
        /// GPU hours the remaining items need at the batch's images per hour.
        public var remainingWorkHours: Double
        public var payloadBytes: Int64

        public init(batchID: Int64, ready: Int, unacknowledged: Int, consumers: Int, remainingItems: Int, remainingWorkHours: Double, payloadBytes: Int64) {
            self.batchID = batchID
            self.ready = ready
            self.unacknowledged = unacknowledged
            self.consumers = consumers
            self.remainingItems = remainingItems
            self.remainingWorkHours = remainingWorkHours
            self.payloadBytes = payloadBytes
        }

        enum CodingKeys: String, CodingKey {
            case batchID = "batch_id", ready, unacknowledged, consumers
            case remainingItems = "remaining_items", remainingWorkHours = "remaining_work_hours", payloadBytes = "payload_bytes"
        }
    }

    public struct CheckpointDemand: Sendable, Equatable, Codable {
        public var checkpoint: String
        public var items: Int

        public init(checkpoint: String, items: Int) {
            self.checkpoint = checkpoint
            self.items = items
        }
    }

    public init(takenAt: Date, batches: [BatchDemand], unplanned: [CheckpointDemand]) {
        self.takenAt = takenAt
        self.batches = batches
        self.unplanned = unplanned
    }

    enum CodingKeys: String, CodingKey {
        case version, takenAt = "taken_at", batches, unplanned
    }

    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Unacknowledged work is derived: an item neither done nor failed and not waiting in
    /// the queue is held by some pod.
    public static func unacknowledged(remainingItems: Int, ready: Int) -> Int { max(0, remainingItems - ready) }
}
