import Foundation

/// A value shared between tasks and cancellation handlers, read and changed only under a
/// lock (cancellation handlers run synchronously, so an actor would need a task to reach).
/// `Synchronization.Mutex` would do, but needs macOS 15 and the package supports macOS 14.
final class Locked<Value>: @unchecked Sendable {
    // `@unchecked Sendable`: `value` is only touched inside `withLock`, with `lock` held.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
