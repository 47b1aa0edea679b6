import SpotqCore

/// The circuit breaker for pod faults (``AttemptFault/pod(_:)``), as a pure value: counts the
/// faults in a row, says how long to pause before the next attempt (exponential, capped: a
/// ComfyUI that comes back is noticed within the cap, a dead one is not hammered), and
/// trips at SPOTQ_POD_FAULT_LIMIT faults in a row. A stored image resets it; the item's own
/// failures neither count nor reset (they say nothing about the pod). PodFaultBreakerTests.
struct PodFaultBreaker: Sendable, Equatable {
    /// Faults in a row that give the pod up (at least 1).
    let limit: Int
    let backoff: RetryBackoff
    private(set) var faultsInARow = 0
    private(set) var tripped = false

    enum Verdict: Sendable, Equatable {
        /// Go on, after ``pause(using:)``.
        case carryOn
        /// The pod is faulted: stop consuming, hand everything back, report, exit.
        case trip(reason: String)
    }

    init(limit: Int, backoff: RetryBackoff) {
        self.limit = max(1, limit)
        self.backoff = backoff
    }

    mutating func recordFault(_ reason: String) -> Verdict {
        faultsInARow += 1
        guard faultsInARow >= limit, !tripped else { return .carryOn }
        tripped = true
        return .trip(reason: "\(faultsInARow) pod fault\(faultsInARow == 1 ? "" : "s") in a row; last: \(reason)")
    }

    mutating func recordSuccess() {
        faultsInARow = 0
    }

    /// The wait before the next attempt: none after a success, else the backoff for the
    /// faults in a row so far.
    func pause(using generator: inout some RandomNumberGenerator) -> Duration {
        backoff.delay(afterFailures: faultsInARow, using: &generator)
    }
}
