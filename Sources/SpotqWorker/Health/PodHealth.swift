import Logging

/// The worker's judgement of its own pod, shared by the attempts and the downloads: the
/// ``PodFaultBreaker`` behind a lock, and the fault that gives the pod up. A fault is a
/// termination notice (``TerminationNotice``) with its own reason: consuming stops and every
/// delivery in hand goes back to the queue the way it does for SIGTERM, then the batch run
/// reports `pod.faulted` and the worker exits 5.
final class PodHealth: Sendable {
    private let breaker: Locked<PodFaultBreaker>
    private let fault = Locked<String?>(nil)
    let notice: TerminationNotice
    /// How long an attempt in progress has to end once the pod is given up.
    let grace: Duration
    let logger: Logger

    init(breaker: PodFaultBreaker, notice: TerminationNotice, grace: Duration, logger: Logger) {
        self.breaker = Locked(breaker)
        self.notice = notice
        self.grace = grace
        self.logger = logger
    }

    /// Why the pod was given up; nil while it was not.
    var faultReason: String? { fault.withLock { $0 } }

    var faultsInARow: Int { breaker.withLock { $0.faultsInARow } }

    /// Hears how an attempt ended: a pod fault counts (and may trip the breaker), a stored
    /// image resets the count, anything else changes nothing.
    func record(_ result: AttemptResult) {
        switch result {
        case .podFault(let reason):
            let (verdict, count) = breaker.withLock { ($0.recordFault(reason), $0.faultsInARow) }
            logger.warning("worker: a pod fault (\(count) in a row); the item goes back to the queue", metadata: ["reason": "\(reason)"])
            if case .trip(let why) = verdict { giveUp(why) }
        case .stored:
            breaker.withLock { $0.recordSuccess() }
        case .refused, .failed, .modelUnusable, .interrupted:
            break
        }
    }

    /// The pod is faulted for `reason` (the first reason stays): consuming stops and what it
    /// holds goes back to the queue.
    func giveUp(_ reason: String) {
        let first = fault.withLock { fault -> Bool in
            guard fault == nil else { return false }
            fault = reason
            return true
        }
        guard first else { return }
        logger.error("worker: this pod is faulted; handing its work back and leaving so it is replaced", metadata: ["reason": "\(reason)"])
        notice.announce(reason: "pod faulted", within: grace)
    }

    /// Waits the breaker's pause before the next attempt (none after a success).
    func pauseBeforeAttempt() async throws {
        var generator = SystemRandomNumberGenerator()
        let pause = breaker.withLock { $0.pause(using: &generator) }
        if pause > .zero { try await Task.sleep(for: pause) }
    }
}
