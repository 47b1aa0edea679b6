import DedicatedThread
import Hummingbird
import SpotqCore
import Synchronization

/// Admits result uploads by `IngestAdmission`'s rule and gives each admitted one an ingest
/// thread of its own for its blocking work (inflate, hash, write, fsync). Refused uploads
/// are answered before their body is read: 429 when the token already holds its share, 503
/// when every slot is taken, both with `Retry-After`.
public final class IngestGate: Sendable {
    private let admission: Mutex<IngestAdmission>
    private let threads: [DedicatedThread]
    public let limits: IngestConcurrency

    public init(limits: IngestConcurrency) {
        self.limits = limits
        self.admission = Mutex(IngestAdmission(limits: limits))
        self.threads = (0..<max(1, limits.maxConcurrent)).map { DedicatedThread(name: "spotq-ingest-\($0)") }
    }

    deinit {
        for thread in threads { thread.stop() }
    }

    /// Uploads in progress now.
    public var inProgress: Int { admission.withLock { $0.inProgress } }
    /// Uploads refused so far (429 and 503).
    public var refusals: Int { admission.withLock { $0.refusals } }
    /// Uploads admitted so far.
    public var admissions: Int { admission.withLock { $0.admissions } }

    /// Runs `body` on an ingest thread if `token` may start an upload now; else throws the
    /// refusal to answer with.
    public func admit<T>(token: String, _ body: (DedicatedThread) async throws -> T) async throws -> T {
        let decision = admission.withLock { $0.admit(token: token) }
        let slot: Int
        switch decision {
        case .admitted(let admitted):
            slot = admitted
        case .overShare(let limit):
            throw SpotqHTTPError(.tooManyRequests, "this token already has \(limit) uploads in progress (SPOTQ_INGEST_MAX_PER_TOKEN); retry after \(limits.retryAfterSeconds) s", retryAfterSeconds: limits.retryAfterSeconds)
        case .full(let limit):
            throw SpotqHTTPError(.serviceUnavailable, "the server is storing \(limit) uploads already (SPOTQ_INGEST_MAX_CONCURRENT); retry after \(limits.retryAfterSeconds) s", retryAfterSeconds: limits.retryAfterSeconds)
        }
        defer { admission.withLock { $0.release(slot: slot, token: token) } }
        return try await body(threads[slot])
    }
}
