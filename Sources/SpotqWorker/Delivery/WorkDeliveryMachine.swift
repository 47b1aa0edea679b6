import SpotqBroker
import SpotqCore

/// The worker's rules for one work delivery, as a pure state machine: the handler tells it
/// what happened (the body read, the notice, the models, the attempt) and it answers what
/// to do next, up to the delivery's ``Settlement``. No I/O, so every rule is unit-tested
/// without a broker, a server or ComfyUI (WorkDeliveryMachineTests).
///
/// The rules (README, "The pod worker"):
/// - a termination notice before the image started hands the delivery back;
/// - a body that is not a work message is dead-lettered with the reason;
/// - models failed for good: the image fails for good (dead-lettered with the reason);
/// - models still downloading after the wait: handed back, and consuming pauses until they
///   are on disk (a delivery is never held for a download);
/// - the attempt stored the image: acked, then `image.done`;
/// - refused (ComfyUI refused the workflow, the server the bundle): dead-lettered at once;
/// - failed: republished with `x-spotq-failures` + 1, or dead-lettered at the
///   `maxFailures`th failure (its dead letter's header counting that failure too);
/// - a model ComfyUI cannot load: dead-lettered naming the model, which is marked unusable
///   (``AttemptFault``: the asset's fault, not the item's);
/// - a pod fault: handed back to the back of the queue with its failure count untouched
///   (another pod may do it) and `x-spotq-pod-faults` + 1, or dead-lettered at the
///   `maxPodFaults`th (an item that faults every pod it meets is poison, not bad luck);
///   the pod's breaker hears of it (``PodFaultBreaker``);
/// - interrupted by the termination deadline: handed back (a reclaim never counts as a
///   failure), and ComfyUI is told to stop.
struct WorkDeliveryMachine: Sendable {
    /// Where the delivery is. Moved only by ``handle(_:)``.
    enum State: Sendable, Equatable {
        /// In hand, its body not read yet. Every delivery starts here.
        case received
        /// Read; waiting (for a bounded time) for the models its image needs. Entered from
        /// `received` by a readable body; left by the models' state or a notice.
        case waitingForModels(WorkOrder)
        /// ComfyUI generating, then the bundle uploading. Entered from `waitingForModels`
        /// when the models are ready; left by the attempt's result only.
        case attempting(WorkOrder)
        /// Decided; nothing more happens to this delivery. Final.
        case settled(Settlement)
    }

    /// What the handler saw.
    enum Event: Sendable, Equatable {
        /// The body was read: the work it asks for, or why it is not a work message.
        case opened(Result<WorkOrder, Unreadable>)
        /// A termination notice is set (SIGTERM, a spot notice).
        case noticed
        /// The state of the models the image needs, after waiting for them.
        case models(ModelAvailability)
        /// How the attempt (generate, then upload) ended.
        case attempted(AttemptResult)
    }

    /// What the handler does next.
    enum Action: Sendable, Equatable {
        /// Wait (for at most SPOTQ_ASSET_WAIT_SECONDS, and only until a notice) for these
        /// models, then report ``Event/models(_:)``.
        case waitForModels([String])
        /// Publish `events` (`image.started`), then generate and upload; report
        /// ``Event/attempted(_:)``.
        case attempt(events: [WorkerEvent])
        /// Carry out the settlement; the delivery is done with.
        case settle(Settlement)
        /// The event changes nothing in this state (a notice while attempting: the
        /// deadline decides; anything after the settlement). Impossible pairs land here
        /// too, leaving the state as it was.
        case none
    }

    /// What a body that is not a work message says about itself.
    struct Unreadable: Error, Sendable, Equatable {
        var reason: String
    }

    /// The part of a work item the rules need.
    struct WorkOrder: Sendable, Equatable {
        var itemID: Int64
        /// The checkpoint first, then the LoRAs.
        var models: [String]
    }

    private(set) var state: State = .received
    /// The delivery's `x-spotq-failures` header: real failures of earlier attempts.
    let failuresSoFar: Int
    /// SPOTQ_MAX_FAILURES: the failure that reaches it dead-letters the image.
    let maxFailures: Int
    /// The delivery's `x-spotq-pod-faults` header: pod faults of earlier attempts.
    let podFaultsSoFar: Int
    /// SPOTQ_MAX_POD_FAULTS: the pod fault that reaches it dead-letters the image.
    let maxPodFaults: Int

    init(failuresSoFar: Int, maxFailures: Int, podFaultsSoFar: Int = 0, maxPodFaults: Int = 10) {
        self.failuresSoFar = max(0, failuresSoFar)
        self.maxFailures = maxFailures
        self.podFaultsSoFar = max(0, podFaultsSoFar)
        self.maxPodFaults = maxPodFaults
    }

    mutating func handle(_ event: Event) -> Action {
        switch (state, event) {
        case (.received, .noticed):
            return settle(Settlement(decision: .requeue))
        case (.received, .opened(.failure(let unreadable))):
            return settle(Settlement(decision: .deadLetter(reason: unreadable.reason)))
        case (.received, .opened(.success(let order))):
            state = .waitingForModels(order)
            return .waitForModels(order.models)

        case (.waitingForModels, .noticed):
            return settle(Settlement(decision: .requeue))
        case (.waitingForModels(let order), .models(.ready)):
            state = .attempting(order)
            return .attempt(events: [WorkerEvent(kind: .imageStarted, item: order.itemID)])
        case (.waitingForModels(let order), .models(.pending)):
            return settle(Settlement(decision: .requeue, followUp: .pauseUntilModels(order.models)))
        case (.waitingForModels(let order), .models(.failed(let reason))):
            return settle(Settlement(decision: .deadLetter(reason: reason), eventsBefore: [.failed(order.itemID, reason, final: true)]))

        case (.attempting(let order), .attempted(let result)):
            return settle(settlement(order, result))
        case (.attempting, .noticed):
            return .none

        case (.received, .models), (.received, .attempted),
            (.waitingForModels, .opened), (.waitingForModels, .attempted),
            (.attempting, .opened), (.attempting, .models),
            (.settled, _):
            return .none
        }
    }

    private mutating func settle(_ settlement: Settlement) -> Action {
        state = .settled(settlement)
        return .settle(settlement)
    }

    private func settlement(_ order: WorkOrder, _ result: AttemptResult) -> Settlement {
        let item = order.itemID
        switch result {
        case .stored:
            return Settlement(decision: .ack, eventsAfter: [WorkerEvent(kind: .imageDone, item: item)])
        case .refused(let reason):
            return Settlement(decision: .deadLetter(reason: reason), eventsBefore: [.failed(item, reason, final: true)])
        case .failed(let reason):
            let failures = failuresSoFar + 1
            guard failures < maxFailures else {
                let final = "failed \(failures) times; last: \(reason)"
                return Settlement(decision: .giveUp(failures: failures, podFaults: podFaultsSoFar, reason: final), eventsBefore: [.failed(item, final, final: true)])
            }
            return Settlement(decision: .retry(failures: failures), eventsAfter: [.failed(item, reason, final: false)])
        case .modelUnusable(let filename, let reason):
            let final = "model \(filename) is unavailable: \(reason)"
            return Settlement(decision: .deadLetter(reason: final), eventsBefore: [.failed(item, final, final: true)], followUp: .markModelUnusable(filename: filename, reason: reason))
        case .podFault(let reason):
            let faults = podFaultsSoFar + 1
            guard faults < maxPodFaults else {
                let final = "handed back after \(faults) pod faults; last: \(reason)"
                return Settlement(decision: .giveUp(failures: failuresSoFar, podFaults: faults, reason: final), eventsBefore: [.failed(item, final, final: true)])
            }
            return Settlement(decision: .handBack(podFaults: faults), eventsAfter: [.podFault(item, reason)])
        case .interrupted:
            return Settlement(decision: .requeue, eventsAfter: [WorkerEvent(kind: .imageInterrupted, item: item)], followUp: .interruptComfy)
        }
    }
}

/// How a delivery ends: the decision the consumer shell carries out, the events around it,
/// and what the worker does afterwards.
struct Settlement: Sendable, Equatable {
    /// What happens to the message.
    var decision: DeliveryDecision
    /// Published before the decision is carried out: a final failure is on record before
    /// its dead letter.
    var eventsBefore: [WorkerEvent] = []
    /// Published after: `image.done` follows the ack (never before the server's 2xx), a
    /// retried failure follows its republished copy, `image.interrupted` the hand-back.
    var eventsAfter: [WorkerEvent] = []
    var followUp: FollowUp? = nil

    /// What the worker does once the decision is carried out.
    enum FollowUp: Sendable, Equatable {
        /// Stop consuming (hold nothing) until these models are on disk, then consume again.
        case pauseUntilModels([String])
        /// Tell ComfyUI to drop the image cut short by the deadline (`POST /interrupt`).
        case interruptComfy
        /// The model cannot be used on any pod: fail it (`asset.failed`), so every delivery
        /// needing it is dead-lettered at once instead of tried.
        case markModelUnusable(filename: String, reason: String)
    }
}

/// An event the worker publishes to `spotq.events` about an item.
struct WorkerEvent: Sendable, Equatable {
    var kind: EventKind
    var item: Int64?
    var detail: [String: JSONScalar] = [:]

    static func failed(_ item: Int64, _ reason: String, final: Bool) -> WorkerEvent {
        WorkerEvent(kind: .imageFailed, item: item, detail: ["reason": .string(reason), "final": .bool(final)])
    }

    /// An item handed back for a fault of the pod: back in the queue like an interruption,
    /// its failure count untouched.
    static func podFault(_ item: Int64, _ reason: String) -> WorkerEvent {
        WorkerEvent(kind: .imageInterrupted, item: item, detail: ["reason": .string(String(reason.prefix(1_000))), "pod_fault": .bool(true)])
    }
}

/// Whether the models an image needs are on disk.
enum ModelAvailability: Sendable, Equatable {
    /// Some are still downloading.
    case pending
    /// All verified on disk.
    case ready
    /// One can never be had (the reason names it).
    case failed(String)
}

/// How one attempt at an image (generate in ComfyUI, then upload) ended.
enum AttemptResult: Sendable, Equatable {
    /// The server answered 2xx: the image is stored.
    case stored
    /// The same attempt can never succeed (ComfyUI refused the workflow, the server refused
    /// the bundle).
    case refused(String)
    /// This attempt failed for a reason of the item's; another may not.
    case failed(String)
    /// ComfyUI cannot load a model the item needs, though the worker verified it.
    case modelUnusable(filename: String, reason: String)
    /// The pod failed (ComfyUI unreachable, CUDA, disk…): not the item's fault.
    case podFault(String)
    /// The termination deadline came first.
    case interrupted
}
