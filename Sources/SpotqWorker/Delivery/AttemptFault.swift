import Foundation

/// Whose fault a failed attempt at an image is, decided from what ComfyUI said alone (a
/// pure function, AttemptFaultTests):
/// - the item's: ComfyUI refused its workflow for a reason of the workflow (an unknown
///   sampler, an input out of range, an unknown node class), or ran it and failed in a node
///   that is not a model loader for a reason that is not the machine's. A refusal is final;
///   a run that failed, or took past the timeout, may pass on another try (the item's budget,
///   SPOTQ_MAX_FAILURES).
/// - the asset's: a model loader (CheckpointLoaderSimple, LoraLoader…) failed to load a file
///   the worker verified against the manifest's SHA-256, e.g. SafetensorError "header too
///   large". The bytes are the ones the operator registered, so every pod would fail the same
///   way and downloading again cannot help: the model is unusable (`asset.failed`), and the
///   items that need it are dead-lettered naming it, not blamed for it.
/// - the pod's: ComfyUI unreachable or answering 5xx, a prompt lost or interrupted by someone
///   else, a CUDA error or out of memory, a full disk, an output that cannot be fetched, and a
///   `value_not_in_list` naming a model the worker verified (ComfyUI does not see the worker's
///   model folders). Another pod would do the item; this one counts towards its breaker.
enum AttemptFault: Sendable, Equatable {
    case item(String, final: Bool)
    case asset(filename: String, reason: String)
    case pod(String)

    /// Node classes that load a model file; an execution error in one is the file's.
    static let modelLoaders: Set<String> = [
        "CheckpointLoaderSimple", "CheckpointLoader", "ImageOnlyCheckpointLoader", "unCLIPCheckpointLoader",
        "LoraLoader", "LoraLoaderModelOnly",
    ]
    /// The inputs naming model files, as ComfyUI's loaders call them.
    static let modelInputs: Set<String> = ["ckpt_name", "lora_name"]
    /// Words of an exception that say the machine failed, not the workflow (lowercased).
    static let machineFaults = [
        "cuda", "out of memory", "outofmemory", "cudnn", "cublas", "nvml", "hip error", "no space left on device", "errno 28",
        "disk quota exceeded", "read-only file system", "input/output error", "errno 5",
    ]

    /// - Parameters:
    ///   - verifiedModels: the models the item needs, all verified on disk before the attempt.
    ///   - modelOfNode: the model file each loader node of the workflow names, by node id.
    static func of(_ failure: ComfyFailure, verifiedModels: Set<String>, modelOfNode: [String: String]) -> AttemptFault {
        switch failure {
        case .unreachable, .serverError, .unexpectedAnswer, .lost, .interruptedInComfy, .outputUnavailable:
            return .pod(failure.description)
        case .refused(let refusal):
            let unseen = refusal.nodeErrors.filter { error in
                error.type == "value_not_in_list" && error.inputName.map(modelInputs.contains) == true
                    && error.receivedValue.map(verifiedModels.contains) == true
            }
            if let first = unseen.first, let name = first.receivedValue {
                return .pod("ComfyUI does not list model \(name), which this pod verified on disk: it does not see the worker's model folders (\(refusal.reason))")
            }
            return .item(failure.description, final: true)
        case .executionError(let error):
            let words = (error.exceptionType + " " + error.message).lowercased()
            if machineFaults.contains(where: words.contains) { return .pod(failure.description) }
            if let type = error.nodeType, modelLoaders.contains(type), let node = error.nodeID, let file = modelOfNode[node], verifiedModels.contains(file) {
                return .asset(filename: file, reason: "ComfyUI cannot load it: \(error.exceptionType): \(error.message)")
            }
            return .item(failure.description, final: false)
        case .timedOut:
            return .item(failure.description, final: false)
        case .noImage:
            return .item(failure.description, final: true)
        }
    }

    var result: AttemptResult {
        switch self {
        case .item(let reason, let final): final ? .refused(reason) : .failed(reason)
        case .asset(let filename, let reason): .modelUnusable(filename: filename, reason: reason)
        case .pod(let reason): .podFault(reason)
        }
    }
}
