import Foundation

/// Set by a task's cancellation handler on any thread, read by blocking C code on a
/// connection's `DedicatedThread` (libpq's wait loop, libcurl's callbacks) to give up early.
public final class CancellationFlag: @unchecked Sendable {
    // `@unchecked Sendable`: `cancelled` is only read or written with `lock` held.
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    public var isCancelled: Bool {
        lock.withLock { cancelled }
    }

    public func cancel() {
        lock.withLock { cancelled = true }
    }
}
