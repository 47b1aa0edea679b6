/// Runs `operation`, failing with ``TimeoutError`` if it takes longer than `limit`.
/// Tests wait on events with this, never on bare sleeps.
public func withTimeout<T: Sendable>(
    _ limit: Duration,
    _ what: String = "operation",
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TimeoutError(description: "\(what) did not finish within \(limit)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

public struct TimeoutError: Error, CustomStringConvertible {
    public let description: String
}
