import Foundation

/// When this pod must be gone: set by a graceful shutdown (SIGTERM; RunPod sends SIGKILL
/// about 5 s later) or by a spot notice from the metadata endpoint (AWS: two minutes).
/// Times are the worker's own `ContinuousClock`.
final class TerminationNotice: Sendable {
    private struct Notice {
        var deadline: ContinuousClock.Instant?
        /// When the first notice arrived.
        var announcedAt: ContinuousClock.Instant?
        var reason: String?
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let notice = Locked(Notice())

    init() {}

    var isSet: Bool { notice.withLock { $0.deadline != nil } }
    var reason: String? { notice.withLock { $0.reason } }

    /// Sets the deadline `grace` from now, unless an earlier notice set a sooner one (the
    /// sooner deadline and its reason stay).
    func announce(reason: String, within grace: Duration) {
        let now = ContinuousClock.now
        let resumed = notice.withLock { notice in
            if notice.announcedAt == nil { notice.announcedAt = now }
            if notice.deadline.map({ now + grace < $0 }) ?? true {
                notice.deadline = now + grace
                notice.reason = reason
            }
            defer { notice.waiters = [:] }
            return Array(notice.waiters.values)
        }
        for waiter in resumed { waiter.resume() }
    }

    /// Returns once a termination is announced, or when the waiting task is cancelled.
    func wait() async {
        let id = notice.withLock { notice in
            defer { notice.nextWaiter += 1 }
            return notice.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = notice.withLock { notice in
                    if notice.deadline != nil || Task.isCancelled { return true }
                    notice.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            notice.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Returns at the deadline (at once when it has passed); waits for a notice first.
    /// Returns early only when the task is cancelled.
    func waitForDeadline() async {
        await wait()
        if let left = remaining(), left > .zero { try? await Task.sleep(for: left) }
    }

    /// Milliseconds since the first notice (0 without one).
    func millisecondsSinceNotice() -> Int64 {
        guard let announcedAt = notice.withLock({ $0.announcedAt }) else { return 0 }
        let elapsed = ContinuousClock.now - announcedAt
        return elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }

    /// Time left before the deadline (nil when none is set).
    func remaining() -> Duration? {
        notice.withLock { $0.deadline }.map { $0 - ContinuousClock.now }
    }
}
