import Foundation

/// Set by a task's cancellation handler, read by libcurl's callbacks on the client's thread.
final class CancellationFlag: @unchecked Sendable {
    // `@unchecked Sendable`: `cancelled` is only read or written with `lock` held.
    private let lock = NSLock()
    private var cancelled = false

    var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }

    func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
    }
}
