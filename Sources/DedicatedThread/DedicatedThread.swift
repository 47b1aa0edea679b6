import Foundation

/// A thread of its own that runs blocking work for exactly one owner, one job at a time.
///
/// libpq, rabbitmq-c and libcurl block the calling thread. Calling them from Swift's
/// cooperative pool would starve every other task on a 2-core machine, so each
/// connection owns one `DedicatedThread` and hops onto it with ``run(_:)``. Jobs run
/// in submission order, which also gives the owner the serial access these C
/// libraries require. The thread ends when it is stopped or its owner lets go of it.
public final class DedicatedThread: @unchecked Sendable {
    // `@unchecked Sendable`: `thread` is started in `init` and afterwards only compared
    // by identity; all mutable state lives in `JobQueue`, which locks.
    private let queue: JobQueue
    private let thread: Thread

    /// The thread's name, as shown by debuggers and `ps -L`.
    public let name: String

    public init(name: String) {
        let queue = JobQueue()
        self.name = name
        self.queue = queue
        // The loop holds the queue, not `self`, so dropping the owner ends the thread.
        self.thread = Thread {
            while let job = queue.next() { job() }
        }
        thread.name = name
        thread.start()
    }

    deinit {
        queue.stop()
    }

    /// Runs `body` on this thread and returns its result to the calling task.
    ///
    /// The calling task suspends (it does not block a cooperative thread) until the job
    /// has run. Throws ``DedicatedThreadError/stopped(name:)`` if the thread was stopped
    /// before the job could start.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = queue.submit {
                continuation.resume(with: Result { try body() })
            }
            if !accepted {
                continuation.resume(throwing: DedicatedThreadError.stopped(name: name))
            }
        }
    }

    /// Queues `job` without waiting for it. Returns false when the thread is stopping.
    @discardableResult
    public func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        queue.submit(job)
    }

    /// Lets the queued jobs finish, then ends the thread. Safe to call more than once.
    public func stop() {
        queue.stop()
    }

    /// True when called from this thread; owners use it to check that their C handle
    /// is touched only here.
    public var isCurrent: Bool { Thread.current === thread }
}

/// The jobs waiting for a `DedicatedThread`.
private final class JobQueue: @unchecked Sendable {
    // `@unchecked Sendable`: `jobs` and `stopping` are only touched with `condition` held.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var stopping = false

    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next job, waiting for one; nil once stopped and drained.
    func next() -> (@Sendable () -> Void)? {
        condition.lock()
        defer { condition.unlock() }
        while head == jobs.count && !stopping {
            condition.wait()
        }
        guard head < jobs.count else { return nil }
        let job = jobs[head]
        head += 1
        if head == jobs.count {
            jobs.removeAll(keepingCapacity: true)
            head = 0
        }
        return job
    }
}

public enum DedicatedThreadError: Error, CustomStringConvertible, Sendable {
    case stopped(name: String)

    public var description: String {
        switch self {
        case .stopped(let name): "the worker thread '\(name)' has stopped and takes no more work"
        }
    }
}
