/// How long the work loop has gone without a delivery in hand. The batch-finished check
/// waits on it: it sleeps until SPOTQ_IDLE_EXIT_SECONDS after the last delivery ended (and
/// again if one came meanwhile), never waking on a fixed period, and not at all while a
/// delivery is in hand.
final class IdleTimer: Sendable {
    private struct Activity {
        var inHand = 0
        var since = ContinuousClock.now
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let activity = Locked(Activity())

    init() {}

    /// A delivery is in hand.
    func begin() {
        activity.withLock { $0.inHand += 1 }
    }

    /// The delivery is settled; idleness counts from now.
    func end() {
        let waiters = activity.withLock { activity -> [CheckedContinuation<Void, Never>] in
            activity.inHand = max(0, activity.inHand - 1)
            activity.since = .now
            guard activity.inHand == 0 else { return [] }
            defer { activity.waiters = [:] }
            return Array(activity.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Idleness counts from now (a consumer starting, the server saying work is left).
    func restart() {
        activity.withLock { $0.since = .now }
    }

    /// Returns once no delivery has been in hand for `duration`. Throws `CancellationError`.
    func idle(for duration: Duration) async throws {
        while true {
            try Task.checkCancellation()
            let (inHand, since) = activity.withLock { ($0.inHand, $0.since) }
            if inHand > 0 {
                await untilNothingInHand()
                continue
            }
            let due = since + duration
            if ContinuousClock.now >= due { return }
            try await Task.sleep(until: due, clock: .continuous)
        }
    }

    private func untilNothingInHand() async {
        let id = activity.withLock { activity in
            defer { activity.nextWaiter += 1 }
            return activity.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = activity.withLock { activity in
                    if activity.inHand == 0 || Task.isCancelled { return true }
                    activity.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            activity.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
