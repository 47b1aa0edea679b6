import Foundation
import SpotqCore

/// What the worker is doing and when it last got anywhere, as pure state: the work loop,
/// the downloads and the uploads tell it what they do (with the time), and ``report(at:)``
/// says what a heartbeat carries (``HeartbeatReport``). No clock, no lock: unit-tested alone
/// (ActivityLogTests); ``ActivityTracker`` shares it between tasks.
///
/// Progress (``HeartbeatReport/progressAt``) moves on when something moves forward: an item
/// settled for good (stored, or dead-lettered), a model ready, a download's bytes advancing.
/// A retried or handed-back item is not progress: a pod that fails every image, however
/// slowly, is getting nowhere. Time spent waiting for work is added to the mark, so an idle
/// worker is never stalled and a busy one is judged on its busy time alone.
struct ActivityLog: Sendable, Equatable {
    /// What the work loop does (the downloads run beside it).
    enum Work: Sendable, Equatable {
        case starting
        case waitingForWork
        case waitingForAsset(String?)
        case generating(item: Int64, prompt: String?)
        case uploading(item: Int64)
        case draining
    }

    struct Download: Sendable, Equatable {
        var asset: String
        var bytes: Int64
        var since: Date
    }

    private(set) var work: Work = .starting
    private(set) var workSince: Date
    /// The model download in flight, if any.
    private(set) var download: Download?
    /// The last progress, not counting the current idle stretch (see ``progress(at:)``).
    private var progressAt: Date
    /// When the work loop began waiting for work; nil while it is busy.
    private var idleSince: Date?

    init(at now: Date) {
        workSince = now
        progressAt = now
    }

    /// The progress mark at `now`: the last progress plus the time since spent waiting for work.
    func progress(at now: Date) -> Date {
        guard let idleSince else { return progressAt }
        return progressAt.addingTimeInterval(max(0, now.timeIntervalSince(idleSince)))
    }

    /// The work loop moved to `next`. The same activity again (a prompt id learnt while
    /// generating the same item) keeps its start.
    mutating func enter(_ next: Work, at now: Date) {
        if !Self.sameActivity(work, next) { workSince = now }
        let idle = next == .waitingForWork
        if idle, idleSince == nil {
            idleSince = now
        } else if !idle, idleSince != nil {
            progressAt = progress(at: now)
            idleSince = nil
        }
        work = next
    }

    /// Something moved forward (an item settled for good, a model ready).
    mutating func progressed(at now: Date) {
        progressAt = now
        if idleSince != nil { idleSince = now }
    }

    /// A download of `asset` is under way with `bytes` on disk; more bytes than last said is progress.
    mutating func downloading(_ asset: String, bytes: Int64, at now: Date) {
        guard let current = download, current.asset == asset else {
            download = Download(asset: asset, bytes: bytes, since: now)
            return
        }
        if bytes > current.bytes { progressed(at: now) }
        download?.bytes = bytes
    }

    /// The download of `asset` ended; `ready`: verified on disk (progress).
    mutating func downloadEnded(_ asset: String, ready: Bool, at now: Date) {
        if download?.asset == asset { download = nil }
        if ready { progressed(at: now) }
    }

    /// What a heartbeat at `now` says: the work loop's activity, except that a download in
    /// flight is what a worker that is not generating or uploading is doing.
    func report(at now: Date) -> HeartbeatReport {
        var report = HeartbeatReport(activity: .starting, since: workSince, progressAt: progress(at: now))
        switch work {
        case .starting: report.activity = .starting
        case .waitingForWork: report.activity = .waitingForWork
        case .waitingForAsset(let asset): (report.activity, report.asset) = (.waitingForAsset, asset)
        case .generating(let item, let prompt): (report.activity, report.itemID, report.promptID) = (.generating, item, prompt)
        case .uploading(let item): (report.activity, report.itemID) = (.uploading, item)
        case .draining: report.activity = .draining
        }
        if let download, [.starting, .waitingForWork, .waitingForAsset].contains(report.activity) {
            (report.activity, report.since, report.asset, report.bytes) = (.downloading, download.since, download.asset, download.bytes)
        }
        return report
    }

    static func sameActivity(_ a: Work, _ b: Work) -> Bool {
        switch (a, b) {
        case (.generating(let x, _), .generating(let y, _)): x == y
        case (.waitingForAsset, .waitingForAsset): true
        default: a == b
        }
    }
}
