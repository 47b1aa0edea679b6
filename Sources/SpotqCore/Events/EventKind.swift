/// What a `spotq.events` event says happened. Every kind a pod may publish; anything else
/// is refused by the event recorder (dead-lettered with its reason).
public enum EventKind: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// The pod's worker changed state; the event's `state` says to which (routed `pod.<state>`).
    case state
    /// A sign of life, every SPOTQ_HEARTBEAT_SECONDS, with what the worker is doing
    /// (``HeartbeatReport``); kept on the pod's row (`last_seen_at`, `activity`,
    /// `progress_at`…), not as a row of `pod_events`.
    case heartbeat = "pod.heartbeat"
    /// A model file is on the pod's disk, verified (detail: filename, bytes, reused).
    case assetReady = "asset.ready"
    /// A model file could not be had (detail: filename, reason).
    case assetFailed = "asset.failed"
    /// The pod started generating an item (→ ``ItemEvent/started``).
    case imageStarted = "image.started"
    /// The pod's upload of an item was stored (the server already marked it done).
    case imageDone = "image.done"
    /// An attempt failed (detail: reason; `final` true → ``ItemEvent/gaveUp``, else ``ItemEvent/retried``).
    case imageFailed = "image.failed"
    /// The pod handed an item back for a termination notice (→ ``ItemEvent/interrupted``).
    case imageInterrupted = "image.interrupted"

    public var description: String { rawValue }

    /// The item event this kind reports, if it reports one.
    public func itemEvent(final: Bool) -> ItemEvent? {
        switch self {
        case .imageStarted: .started
        case .imageFailed: final ? .gaveUp : .retried
        case .imageInterrupted: .interrupted
        case .state, .heartbeat, .assetReady, .assetFailed, .imageDone: nil
        }
    }
}
