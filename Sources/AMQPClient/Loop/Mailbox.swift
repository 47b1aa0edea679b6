import Foundation

/// Work handed to a connection's thread. `run` executes there with the connection's state;
/// `fail` is called instead when the connection is gone before the job could run.
struct LoopJob: Sendable {
    let run: @Sendable (ConnectionCore) -> Void
    let fail: @Sendable (AMQPError) -> Void
}

/// The queue of jobs for one connection thread, plus the pipe that wakes the thread out of
/// `poll()` when a job arrives.
final class Mailbox: @unchecked Sendable {
    // `@unchecked Sendable`: `jobs` and `closed` are only touched with `lock` held; the pipe's
    // file descriptors are immutable and closed only after `close()` by the loop thread.
    private let lock = NSLock()
    private var jobs: [LoopJob] = []
    private var closedReason: AMQPError?
    private var lastChannelID = 0
    /// Read end, polled by the loop thread.
    let wakeFD: Int32
    private let wakeWriteFD: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        let status = fds.withUnsafeMutableBufferPointer { pipe($0.baseAddress!) }
        precondition(status == 0, "pipe() failed: errno \(errno)")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeFD = fds[0]
        wakeWriteFD = fds[1]
    }

    /// Queues a job; false once the mailbox is closed (the connection is gone).
    func submit(_ job: LoopJob) -> Bool {
        let wasEmpty: Bool? = lock.withLock {
            guard closedReason == nil else { return nil }
            defer { jobs.append(job) }
            return jobs.isEmpty
        }
        guard let wasEmpty else { return false }
        if wasEmpty {
            var byte: UInt8 = 1
            _ = write(wakeWriteFD, &byte, 1)  // a full pipe already means "wake up"
        }
        return true
    }

    /// A new logical channel id, chosen by the caller so it can clean up after cancellation.
    func makeChannelID() -> Int {
        lock.withLock {
            lastChannelID += 1
            return lastChannelID
        }
    }

    /// Why the mailbox was closed, if it was.
    var closeReason: AMQPError? { lock.withLock { closedReason } }

    var hasJobs: Bool { lock.withLock { !jobs.isEmpty } }

    func takeAll() -> [LoopJob] {
        lock.withLock {
            defer { jobs = [] }
            return jobs
        }
    }

    /// Empties the wake pipe after `poll()` reported it readable.
    func drainWakeups() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeFD, &buffer, buffer.count) > 0 {}
    }

    /// Refuses further jobs and returns the ones never run; the caller fails them.
    func close(reason: AMQPError) -> [LoopJob] {
        lock.withLock {
            if closedReason == nil { closedReason = reason }
            defer { jobs = [] }
            return jobs
        }
    }

    deinit {
        closeDescriptor(wakeFD)
        closeDescriptor(wakeWriteFD)
    }
}

private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
