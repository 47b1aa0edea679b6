/// How many result uploads the server works on at once, and how many of those one token may
/// hold (README, "Result ingest"). Beyond either, the upload is answered at once with a
/// `Retry-After`, before its body is read, so a flood from one pod costs the server neither
/// memory nor the other pods' turn.
public struct IngestConcurrency: Sendable, Equatable {
    /// Uploads in progress at once, over every token (`SPOTQ_INGEST_MAX_CONCURRENT`).
    public var maxConcurrent = 8
    /// Uploads in progress at once with one token (`SPOTQ_INGEST_MAX_PER_TOKEN`).
    public var maxPerToken = 2
    /// What `Retry-After` says, in seconds (`SPOTQ_INGEST_RETRY_AFTER_SECONDS`).
    public var retryAfterSeconds = 1

    public init() {}

    public init(maxConcurrent: Int, maxPerToken: Int, retryAfterSeconds: Int) {
        self.maxConcurrent = maxConcurrent
        self.maxPerToken = maxPerToken
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// The admission rule for uploads: a fixed set of slots (each slot is one ingest thread) and
/// a share per token. Pure state; `IngestGate` holds it under a lock.
public struct IngestAdmission: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        /// Go ahead on this slot; `release` it when done.
        case admitted(slot: Int)
        /// This token already holds its share of slots (answered 429).
        case overShare(limit: Int)
        /// Every slot is taken (answered 503).
        case full(limit: Int)
    }

    public let limits: IngestConcurrency
    private var freeSlots: [Int]
    private var heldByToken: [String: Int] = [:]
    /// Uploads refused so far (429 and 503), and admitted so far.
    public private(set) var refusals = 0
    public private(set) var admissions = 0

    public init(limits: IngestConcurrency) {
        self.limits = limits
        self.freeSlots = Array((0..<max(1, limits.maxConcurrent)).reversed())
    }

    /// Uploads in progress.
    public var inProgress: Int { max(1, limits.maxConcurrent) - freeSlots.count }

    public mutating func admit(token: String) -> Decision {
        let held = heldByToken[token, default: 0]
        guard held < max(1, limits.maxPerToken) else {
            refusals += 1
            return .overShare(limit: max(1, limits.maxPerToken))
        }
        guard let slot = freeSlots.popLast() else {
            refusals += 1
            return .full(limit: max(1, limits.maxConcurrent))
        }
        heldByToken[token] = held + 1
        admissions += 1
        return .admitted(slot: slot)
    }

    public mutating func release(slot: Int, token: String) {
        freeSlots.append(slot)
        let held = heldByToken[token, default: 1] - 1
        heldByToken[token] = held > 0 ? held : nil
    }
}
