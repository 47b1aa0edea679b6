/// Where a batch (`batches.status`) is in its life; ``after(_:)`` decides every move.
///
/// ```
/// planned ─publishing─▶ publishing ─allPublished─▶ queued ─imageStarted─▶ running
///                                                     └───settled / settledAllFailed──┴─▶ done | failed
///                                                     ▲──────────────replayed────────────────┘
/// ```
public enum BatchStatus: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Written by the planner (`spotq plan --apply` or the server's planner). Out: the batch
    /// publisher starts publishing its work (→ publishing).
    case planned
    /// Its work messages are being published. In: the batch publisher. Out: the publisher,
    /// once no item of it is left planned (→ queued). A publisher that died here is finished
    /// by the next run.
    case publishing
    /// All its work is on the broker (`published_at` set). In: the batch publisher; an
    /// operator replaying a dead letter of a finished batch. Out: its first `image.started`
    /// (→ running), or settling.
    case queued
    /// A pod generates its images (`started_at` set). In: the event recorder, on the batch's
    /// first `image.started`. Out: settling.
    case running
    /// Every item settled and at least one image stored (`finished_at` set). In: the server's
    /// settling step (part of the demand component). Out: a replay (→ queued).
    case done
    /// Every item settled and none stored. In and out as ``done``.
    case failed

    public var description: String { rawValue }

    public static let finished: [BatchStatus] = [.done, .failed]
    public static var unfinished: [BatchStatus] { allCases.filter { !finished.contains($0) } }

    public func after(_ event: BatchEvent) -> BatchStatus? {
        switch (self, event) {
        case (.planned, .publishing): .publishing
        case (.planned, .allPublished), (.publishing, .allPublished): .queued
        case (.queued, .imageStarted): .running
        case (.queued, .settled), (.running, .settled): .done
        case (.queued, .settledAllFailed), (.running, .settledAllFailed): .failed
        case (.done, .replayed), (.failed, .replayed): .queued
        default: nil
        }
    }

    public static func sources(of event: BatchEvent) -> [BatchStatus] {
        allCases.filter { $0.after(event) != nil }
    }

    /// Where `event` moves a row to: every event of this lifecycle has one target, whatever
    /// the source (the lifecycle tests check it), so one UPDATE applies it.
    public static func target(of event: BatchEvent) -> BatchStatus {
        let targets = Set(sources(of: event).compactMap { $0.after(event) })
        precondition(targets.count == 1, "\(event) has \(targets.count) targets")
        return targets.first!
    }
}

public enum BatchEvent: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The batch publisher started on it.
    case publishing
    /// No item of it is left unpublished.
    case allPublished
    /// A pod started one of its images.
    case imageStarted
    /// Every item is finished, at least one done.
    case settled
    /// Every item is finished, none done.
    case settledAllFailed
    /// An operator replayed a dead letter of one of its items.
    case replayed

    public var description: String { rawValue }
}
