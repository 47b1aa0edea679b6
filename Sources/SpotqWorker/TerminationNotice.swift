import Dispatch
import Foundation

/// When this pod must be gone: set by SIGTERM (RunPod sends SIGKILL about 5 s later) or by
/// a spot notice from the metadata endpoint (AWS: two minutes).
actor TerminationNotice {
    private(set) var deadline: ContinuousClock.Instant?
    /// When the first notice arrived.
    private(set) var announcedAt: ContinuousClock.Instant?
    private(set) var reason: String?
    private var watchers: [UUID: CheckedContinuation<Void, Never>] = [:]

    var isSet: Bool { deadline != nil }

    func announce(reason: String, within grace: Duration) {
        if announcedAt == nil { announcedAt = .now }
        let candidate = ContinuousClock.now + grace
        if deadline == nil || candidate < deadline! {
            deadline = candidate
            self.reason = reason
        }
        let resumed = watchers.values
        watchers = [:]
        for watcher in resumed { watcher.resume() }
    }

    /// Returns once a termination is announced, or when the waiting task is cancelled.
    func wait() async {
        if deadline != nil { return }
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if deadline != nil || Task.isCancelled {
                    continuation.resume()
                } else {
                    watchers[id] = continuation
                }
            }
        } onCancel: {
            Task { await self.release(id) }
        }
    }

    private func release(_ id: UUID) {
        watchers.removeValue(forKey: id)?.resume()
    }

    /// Milliseconds since the first notice (0 without one).
    func millisecondsSinceNotice() -> Int64 {
        guard let announcedAt else { return 0 }
        let elapsed = ContinuousClock.now - announcedAt
        return elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }

    /// Time left before the deadline (nil when none is set).
    func remaining() -> Duration? {
        deadline.map { $0 - ContinuousClock.now }
    }
}

/// Turns SIGTERM and SIGINT into a ``TerminationNotice`` while started; ``stop()`` puts the
/// signals' earlier dispositions back.
final class SignalWatcher: @unchecked Sendable {
    // Created once in `start` and only cancelled in `stop`, from the same task.
    private var sources: [any DispatchSourceSignal] = []
    private var previous: [(Int32, sighandler_t?)] = []

    func start(notice: TerminationNotice, grace: Duration) {
        for signal in [SIGTERM, SIGINT] {
            // Ignored at the process level so the dispatch source alone sees it.
            previous.append((signal, Foundation.signal(signal, SIG_IGN)))
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler {
                Task { await notice.announce(reason: signal == SIGTERM ? "SIGTERM" : "SIGINT", within: grace) }
            }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        for source in sources { source.cancel() }
        for (signal, handler) in previous { Foundation.signal(signal, handler) }
        sources = []
        previous = []
    }
}
