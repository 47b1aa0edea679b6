/// Where one image request (`image_generation_queue.status`) is in its life. Each case says
/// who moves a row into it and out of it; ``after(_:)`` is the only place the moves are
/// decided, and the SQL that applies them is built from it (``sources(of:)``).
///
/// ```
/// pending ─planned─▶ planned ─published─▶ queued ─started─▶ running ─stored─▶ done
///                                            ▲  ◀─retried/interrupted─┘  │
///                                            └──────replayed── failed ◀──┘ gaveUp / deadLettered
/// ```
public enum ItemStatus: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// In no batch yet. In: the website's INSERT or the enqueue consumer. Out: the planner
    /// puts it in a batch (→ planned).
    case pending
    /// In a batch, its work message not yet confirmed by the broker. In: the planner. Out:
    /// the batch publisher, once the broker confirmed the message (→ queued).
    case planned
    /// Its work message waits in the batch queue. In: the batch publisher; a pod handing it
    /// back (interrupted) or retrying it after a failure; an operator's dead-letter replay.
    /// Out: a pod starts it (→ running).
    case queued
    /// A pod is generating it. In: the pod's `image.started`. Out: ingest stores its image
    /// (→ done), the pod hands it back or retries it (→ queued), or gives up (→ failed).
    case running
    /// Its image is stored. In: result ingest. Out: never; nothing changes a done item.
    case done
    /// Given up: its work message was dead-lettered with the reason (`spotq dlq`). In: the
    /// pod's final `image.failed`, or the server recording its work message's dead letter
    /// (the broker's delivery limit sends no event). Out: an operator's replay (→ queued).
    case failed

    public var description: String { rawValue }

    /// Statuses no pod will change again without an operator.
    public static let finished: [ItemStatus] = [.done, .failed]
    /// Everything before ``finished``.
    public static var unfinished: [ItemStatus] { allCases.filter { !finished.contains($0) } }

    /// The status `event` moves an item in this status to; nil when the event cannot apply
    /// to it (the row is left as it is: a late or repeated event, or one that never fits).
    public func after(_ event: ItemEvent) -> ItemStatus? {
        switch (self, event) {
        case (.pending, .planned): .planned
        case (.planned, .published): .queued
        // A pod may start an item whose publish it raced, or one a late final failure closed.
        case (.planned, .started), (.queued, .started), (.failed, .started): .running
        case (.planned, .retried), (.queued, .retried), (.running, .retried), (.failed, .retried): .queued
        case (.planned, .gaveUp), (.queued, .gaveUp), (.running, .gaveUp), (.failed, .gaveUp): .failed
        case (.queued, .interrupted), (.running, .interrupted): .queued
        case (.planned, .stored), (.queued, .stored), (.running, .stored), (.failed, .stored): .done
        case (.planned, .deadLettered), (.queued, .deadLettered), (.running, .deadLettered): .failed
        case (.failed, .replayed): .queued
        default: nil
        }
    }

    /// The statuses `event` applies to: the `WHERE status = ANY(…)` of its UPDATE.
    public static func sources(of event: ItemEvent) -> [ItemStatus] {
        allCases.filter { $0.after(event) != nil }
    }

    /// Where `event` moves a row to: every event of this lifecycle has one target, whatever
    /// the source (the lifecycle tests check it), so one UPDATE applies it.
    public static func target(of event: ItemEvent) -> ItemStatus {
        let targets = Set(sources(of: event).compactMap { $0.after(event) })
        precondition(targets.count == 1, "\(event) has \(targets.count) targets")
        return targets.first!
    }
}

/// What can happen to an image request, and who says so.
public enum ItemEvent: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The planner put it in a batch.
    case planned
    /// The broker confirmed its work message.
    case published
    /// A pod reported `image.started`.
    case started
    /// A pod reported a failure another attempt may not have (`image.failed`, not final).
    case retried
    /// A pod gave up on it (`image.failed` with `"final": true`).
    case gaveUp
    /// A pod handed it back for a termination notice (`image.interrupted`).
    case interrupted
    /// Result ingest stored its image.
    case stored
    /// The server recorded its work message in `dead_letters`.
    case deadLettered
    /// An operator replayed its dead letter.
    case replayed

    public var description: String { rawValue }
}
