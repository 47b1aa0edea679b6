/// `GET /v1/batches/{id}/progress`: how much of the batch is left.
public struct ProgressAnswer: Codable, Sendable, Equatable {
    public var batchID: Int64
    public var items: Int64
    public var done: Int64
    public var failed: Int64
    public var remaining: Int64

    public init(batchID: Int64, items: Int64, done: Int64, failed: Int64, remaining: Int64) {
        self.batchID = batchID
        self.items = items
        self.done = done
        self.failed = failed
        self.remaining = remaining
    }

    enum CodingKeys: String, CodingKey {
        case batchID = "batch_id", items, done, failed, remaining
    }
}

/// `POST /v1/batches/{id}/results`: the item's result is stored now (201, with how many
/// files) or was stored before (200, `already_stored`).
public struct UploadAnswer: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case stored
        case alreadyStored = "already_stored"
    }

    public var itemID: Int64
    public var status: Status
    public var files: Int?

    public init(itemID: Int64, status: Status, files: Int?) {
        self.itemID = itemID
        self.status = status
        self.files = files
    }

    enum CodingKeys: String, CodingKey {
        case itemID = "item_id", status, files
    }
}

/// `POST /v1/ops/dead-letters/{id}/replay`: the dead letter sent back to its queue.
public struct ReplayAnswer: Codable, Sendable, Equatable {
    public var replayed: Int64

    public init(replayed: Int64) {
        self.replayed = replayed
    }
}
