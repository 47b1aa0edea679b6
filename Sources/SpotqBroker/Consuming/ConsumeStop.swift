import Foundation

/// Tells ``QueueConsumer/consume(until:)`` to stop taking deliveries, from outside (a
/// termination notice, the batch found finished) or from a handler (hand a delivery back and
/// pause). The first reason fired wins; firing again changes nothing.
///
/// On a stop the consumer takes no further delivery: the group in hand is finished (decided,
/// carried out) unless it is being held (then it goes back to the queue), deliveries received
/// but not handed to the handler go back to the queue, and `consume(until:)` returns the reason.
/// A handler that fires the stop from ``QueueHandler/decide(_:)`` is never given another
/// delivery in that call.
public final class ConsumeStop<Reason: Sendable>: @unchecked Sendable {
    // `state` is only touched under `lock`.
    private let lock = NSLock()
    private var state = State()
    /// Waits the consumer runs for the length of a `consume(until:)` call.
    let watches: [@Sendable () async -> Reason?]

    private struct State {
        var reason: Reason?
        var waiters: [Int: CheckedContinuation<Reason?, Never>] = [:]
        var nextWaiter = 0
    }

    /// - Parameter watches: each runs (as a child task) while `consume(until:)` runs; the first
    ///   to return a reason fires the stop with it. Each must return (nil) when cancelled, e.g.
    ///   `{ await notice.wait(); return Task.isCancelled ? nil : .terminating }`.
    public init(watching watches: [@Sendable () async -> Reason?] = []) {
        self.watches = watches
    }

    public convenience init(watching watch: @escaping @Sendable () async -> Reason?) {
        self.init(watching: [watch])
    }

    /// The reason it was fired with; nil while not fired.
    public var reason: Reason? {
        lock.withLock { state.reason }
    }

    /// Fires the stop; the first reason wins.
    public func fire(_ reason: Reason) {
        let waiters: [CheckedContinuation<Reason?, Never>] = lock.withLock {
            guard state.reason == nil else { return [] }
            state.reason = reason
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: reason) }
    }

    /// Returns the reason once fired; nil if the waiting task is cancelled first.
    public func wait() async -> Reason? {
        let id = lock.withLock {
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Reason?, Never>) in
                let now: Reason?? = lock.withLock {
                    if let reason = state.reason { return .some(reason) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = lock.withLock { state.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: nil)
        }
    }
}
