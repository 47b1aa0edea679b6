/// A value one part of the worker produces once and another waits for (the manifest, from
/// the batch run to the downloads), without either holding the other's task.
final class Handoff<Value: Sendable>: Sendable {
    private struct Slot {
        var value: Value?
        var waiters: [UInt64: CheckedContinuation<Value?, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let slot = Locked(Slot())

    init() {}

    /// Hands the value over; the first one given stays.
    func give(_ value: Value) {
        let waiters = slot.withLock { slot -> [CheckedContinuation<Value?, Never>] in
            guard slot.value == nil else { return [] }
            slot.value = value
            defer { slot.waiters = [:] }
            return Array(slot.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    /// The value once given; nil when the waiting task is cancelled first.
    func value() async -> Value? {
        let id = slot.withLock { slot in
            defer { slot.nextWaiter += 1 }
            return slot.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                let now: Value?? = slot.withLock { slot in
                    if let value = slot.value { return .some(value) }
                    if Task.isCancelled { return .some(nil) }
                    slot.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            slot.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }
}
