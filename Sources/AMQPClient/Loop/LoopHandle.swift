import Foundation

/// Whether a connection is alive, and why it ended. Set once, by the connection's thread.
final class ConnectionStatus: @unchecked Sendable {
    // `@unchecked Sendable`: `reason` is only touched with `lock` held.
    private let lock = NSLock()
    private var reason: AMQPError?
    /// Completed with the close reason when the connection's thread has torn everything down.
    let closed = AsyncPromise<AMQPError>()

    var closeReason: AMQPError? { lock.withLock { reason } }

    func markClosed(_ error: AMQPError) {
        lock.withLock { if reason == nil { reason = error } }
        closed.succeed(error)
    }
}

/// What async callers need to run work on a connection's thread: its mailbox and its status.
struct LoopHandle: Sendable {
    let mailbox: Mailbox
    let status: ConnectionStatus

    /// The error to throw for work refused because the connection is gone.
    var goneError: AMQPError {
        status.closeReason ?? mailbox.closeReason
            ?? AMQPError(code: .connectionClosed, message: "the AMQP connection is closed")
    }

    /// Runs `body` on the connection's thread and returns its result. The caller suspends;
    /// cancelling it throws `CancellationError` at once (the job may still run later).
    func perform<T: Sendable>(_ body: @escaping @Sendable (ConnectionCore) throws -> T) async throws -> T {
        let promise = AsyncPromise<T>()
        let accepted = mailbox.submit(LoopJob(
            run: { core in promise.complete(Result { try body(core) }) },
            fail: { promise.fail($0) }))
        guard accepted else { throw goneError }
        return try await promise.value()
    }

    /// Like ``perform(_:)`` for jobs that complete `promise` later themselves (publish confirms).
    func performDeferred<T: Sendable>(
        _ body: @escaping @Sendable (ConnectionCore, AsyncPromise<T>) throws -> Void
    ) async throws -> T {
        let promise = AsyncPromise<T>()
        let accepted = mailbox.submit(LoopJob(
            run: { core in
                do { try body(core, promise) } catch { promise.fail(error) }
            },
            fail: { promise.fail($0) }))
        guard accepted else { throw goneError }
        return try await promise.value()
    }

    /// Queues `body` without waiting; dropped silently when the connection is gone.
    func submit(_ body: @escaping @Sendable (ConnectionCore) -> Void) {
        _ = mailbox.submit(LoopJob(run: body, fail: { _ in }))
    }
}
