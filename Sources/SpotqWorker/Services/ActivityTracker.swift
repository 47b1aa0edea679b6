import Foundation
import SpotqCore

/// The worker's ``ActivityLog``, shared: the work loop, the downloads (from curl's thread)
/// and the uploads tell it what they do; each heartbeat reads it. Every call is a few field
/// writes under a lock, so a download's progress callback may call it ten times a second.
final class ActivityTracker: Sendable {
    private let log: Locked<ActivityLog>
    private let clock: @Sendable () -> Date

    /// - Parameter clock: the time it is (tests pass their own).
    init(clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
        log = Locked(ActivityLog(at: clock()))
    }

    func waitingForWork() { enter(.waitingForWork) }
    func waitingForAsset(_ asset: String?) { enter(.waitingForAsset(asset)) }
    func generating(item: Int64, prompt: String? = nil) { enter(.generating(item: item, prompt: prompt)) }
    func uploading(item: Int64) { enter(.uploading(item: item)) }
    func draining() { enter(.draining) }

    /// An item settled for good, or a model is ready.
    func progressed() {
        let now = clock()
        log.withLock { $0.progressed(at: now) }
    }

    func downloading(_ asset: String, bytes: Int64) {
        let now = clock()
        log.withLock { $0.downloading(asset, bytes: bytes, at: now) }
    }

    func downloadEnded(_ asset: String, ready: Bool) {
        let now = clock()
        log.withLock { $0.downloadEnded(asset, ready: ready, at: now) }
    }

    /// What the next heartbeat says.
    func report() -> HeartbeatReport {
        let now = clock()
        return log.withLock { $0.report(at: now) }
    }

    private func enter(_ work: ActivityLog.Work) {
        let now = clock()
        log.withLock { $0.enter(work, at: now) }
    }
}

extension Settlement {
    /// Whether settling this way moves the batch forward (stored, or given up for good), as
    /// opposed to handing the item back or retrying it: an ack or a dead letter, or whatever
    /// decision carries an `image.done` or a final `image.failed`.
    var movesForward: Bool {
        switch decision {
        case .ack, .deadLetter: return true
        default:
            return (eventsBefore + eventsAfter).contains {
                $0.kind == .imageDone || ($0.kind == .imageFailed && $0.detail["final"]?.boolValue == true)
            }
        }
    }
}

extension AssetAvailability {
    /// The first of `models` still downloading: the one a delivery waits for.
    func firstPending(_ models: [String]) -> String? {
        models.first { state(of: [$0]) == .pending }
    }
}
