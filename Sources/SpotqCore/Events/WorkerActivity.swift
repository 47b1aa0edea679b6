/// What a pod's worker is doing, as its heartbeats say (`pods.activity`). The provisioner
/// judges a pod stalled by its heartbeats' `progress_at`, not by the activity; the activity
/// tells an operator what it is stuck on.
public enum WorkerActivity: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// GPU check, manifest, waiting for ComfyUI to answer (before the work loop runs).
    case starting
    /// Consuming, no delivery in hand: the queue gave it nothing. Never a stall.
    case waitingForWork = "waiting_for_work"
    /// A model download is in flight (asset, bytes so far) while nothing is generating.
    case downloading
    /// A delivery needs a model that is not on disk yet (asset).
    case waitingForAsset = "waiting_for_asset"
    /// ComfyUI runs an item (item, prompt once ComfyUI took it).
    case generating
    /// The item's bundle is being uploaded (item).
    case uploading
    /// Stopped consuming (termination notice, batch finished) and leaving.
    case draining

    public var description: String { rawValue }
}
