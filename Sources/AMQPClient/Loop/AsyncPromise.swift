import Foundation

/// A result set once, from any thread, awaited by any number of tasks.
///
/// Each waiter is cancelled on its own: a cancelled task gets `CancellationError` at once,
/// while the work (and the other waiters) go on. This is how async callers wait for jobs
/// running on a connection's thread without blocking the cooperative pool.
final class AsyncPromise<Value: Sendable>: @unchecked Sendable {
    // `@unchecked Sendable`: `result`, `waiters` and `nextWaiter` are only touched with `lock` held.
    private let lock = NSLock()
    private var result: Result<Value, any Error>?
    private var waiters: [Int: CheckedContinuation<Value, any Error>] = [:]
    private var nextWaiter = 0

    init() {}

    var isCompleted: Bool { lock.withLock { result != nil } }

    /// Sets the result and wakes every waiter. Later calls are ignored; returns false then.
    @discardableResult
    func complete(_ newResult: Result<Value, any Error>) -> Bool {
        let resumed: [CheckedContinuation<Value, any Error>]? = lock.withLock {
            guard result == nil else { return nil }
            result = newResult
            defer { waiters = [:] }
            return Array(waiters.values)
        }
        guard let resumed else { return false }
        for waiter in resumed { waiter.resume(with: newResult) }
        return true
    }

    @discardableResult
    func succeed(_ value: Value) -> Bool { complete(.success(value)) }

    @discardableResult
    func fail(_ error: any Error) -> Bool { complete(.failure(error)) }

    /// Waits for the result; throws `CancellationError` promptly when the task is cancelled.
    func value() async throws -> Value {
        let id = lock.withLock {
            nextWaiter += 1
            return nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                lock.lock()
                if let result {
                    lock.unlock()
                    continuation.resume(with: result)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiters[id] = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            let waiter = lock.withLock { waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
