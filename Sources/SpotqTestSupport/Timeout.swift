import Synchronization

/// Runs `operation`, failing with ``TimeoutError`` if it takes longer than `limit`.
/// Tests wait on events with this (or ``eventually(_:timeout:_:)``), never on bare sleeps.
public func withTimeout<T: Sendable>(
    _ limit: Duration,
    _ what: String = "operation",
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TimeoutError(description: "timed out after \(limit): \(what)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Waits until `condition` holds, checking it every `poll` (50 ms), for at most `timeout`:
/// for state that no event announces (a row in PostgreSQL, a queue's depth). A condition
/// that throws counts as not yet; the last error is in the timeout's description. A costly
/// condition (one that starts a process) asks less often.
public func eventually(
    _ what: String, timeout: Duration = .seconds(20), poll: Duration = .milliseconds(50),
    _ condition: @escaping @Sendable () async throws -> Bool
) async throws {
    _ = try await eventually(what, timeout: timeout, poll: poll) { try await condition() ? true : nil }
}

/// The first non-nil value `produce` gives, checked every `poll` for at most `timeout`.
public func eventually<T: Sendable>(
    _ what: String, timeout: Duration = .seconds(20), poll: Duration = .milliseconds(50),
    _ produce: @escaping @Sendable () async throws -> T?
) async throws -> T {
    let lastError = LastError()
    do {
        return try await withTimeout(timeout, what) {
            while true {
                do {
                    if let value = try await produce() { return value }
                } catch {
                    lastError.set(error)
                }
                try await Task.sleep(for: poll)
            }
        }
    } catch let timeout as TimeoutError {
        guard let error = lastError.value else { throw timeout }
        throw TimeoutError(description: "\(timeout.description) (last error: \(error))")
    }
}

public struct TimeoutError: Error, CustomStringConvertible {
    public let description: String
}


/// The condition's latest error, written by the polling task and read after it ended.
final class LastError: Sendable {
    private let storage = Mutex<(any Error)?>(nil)
    func set(_ error: any Error) { storage.withLock { $0 = error } }
    var value: (any Error)? { storage.withLock { $0 } }
}
