import Foundation

/// A pod as the provisioner sees it: our record, updated by the pod's own events and by
/// the provider's API.
public struct FleetPod: Sendable, Equatable {
    public enum ProviderStatus: String, Sendable, Equatable, CaseIterable {
        /// Rented, container not up yet (`runtime` null).
        case starting
        case running
        /// Stopped or reclaimed; the volume is kept.
        case exited
        /// Terminated, or no longer listed by the provider.
        case gone

        /// The provider charges the GPU's price in this status (storage is charged until gone).
        public var isBilledForGPU: Bool { Self.billedForGPU.contains(self) }
        public static let billedForGPU: [ProviderStatus] = [.starting, .running]
    }

    public var id: Int64
    public var batchID: Int64?
    public var state: PodState
    public var providerStatus: ProviderStatus?
    public var interruptible: Bool
    public var requestedAt: Date
    public var priceUSDPerHour: Double
    public var resumeAttempts: Int
    /// spotq stopped it itself (to drain it), so an exit is not a reclaim.
    public var stopRequested: Bool
    /// Last sign of life from its worker (events, heartbeats) or its rental.
    public var lastSeenAt: Date?
    /// What its worker's last heartbeat said it was doing, and since when; nil when it said
    /// nothing of it (not yet, or since a resume).
    public var activity: WorkerActivity?
    public var activitySince: Date?
    /// Its worker's progress mark (``HeartbeatReport/progressAt``): busy without moving
    /// forward since then. nil: no heartbeat reported one.
    public var progressAt: Date?

    public init(
        id: Int64, batchID: Int64?, state: PodState, providerStatus: ProviderStatus?, interruptible: Bool, requestedAt: Date,
        priceUSDPerHour: Double, resumeAttempts: Int = 0, stopRequested: Bool = false, lastSeenAt: Date? = nil,
        activity: WorkerActivity? = nil, activitySince: Date? = nil, progressAt: Date? = nil
    ) {
        self.lastSeenAt = lastSeenAt
        self.activity = activity
        self.activitySince = activitySince
        self.progressAt = progressAt
        self.id = id
        self.batchID = batchID
        self.state = state
        self.providerStatus = providerStatus
        self.interruptible = interruptible
        self.requestedAt = requestedAt
        self.priceUSDPerHour = priceUSDPerHour
        self.resumeAttempts = resumeAttempts
        self.stopRequested = stopRequested
    }

    /// States in which the worker holds no delivery: it has not started consuming yet.
    public var holdsNoWork: Bool { PodState.holdingNoWork.contains(state) }
}

/// What the provisioner should do next.
public enum FleetAction: Sendable, Equatable {
    case rent(batchID: Int64, payloadBytes: Int64)
    case resume(podID: Int64)
    case terminate(podID: Int64, reason: String)
    /// Stop the pod (SIGTERM: the worker hands its deliveries back), then terminate it.
    case drain(podID: Int64, reason: String)
    /// Terminate a pod whose worker lives but is stuck, with a fleet alert: unlike a broken
    /// GPU or a finished batch, a stall has a cause an operator should look into.
    case replaceStalled(podID: Int64, reason: String)
}

/// Sizing and recovery rules, pure: the same snapshot and pods give the same actions.
public struct FleetPlanner: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Each pod should get about this much GPU work.
        public var targetHoursPerPod = 3.0
        public var maxPods = 10
        public var budgetUSDPerHour = 2.0
        /// What one more pod is expected to cost per hour (the highest bid, or on-demand).
        public var newPodUSDPerHour = 0.17
        /// A pod not working after this long is terminated and replaced.
        public var startTimeoutSeconds = 900.0
        /// Resumes of a reclaimed pod before it is replaced instead.
        public var maxResumeAttempts = 1
        /// A running pod whose worker said nothing (no event, no heartbeat) for this long has
        /// lost its worker: it is terminated and replaced. Workers beat every minute.
        public var silentAfterSeconds = 300.0
        /// A running pod whose worker beats but has made no progress (``FleetPod/progressAt``)
        /// for this long is stuck: terminated and replaced. Longer than one image may take: the
        /// worker gives an image up after 1800 s (about 130 times the seed's 14 s), and a
        /// download whose bytes advance, or a worker waiting for work, is progress.
        public var stallAfterSeconds = 1800.0

        public init() {}
    }

    public var limits: Limits

    public init(limits: Limits) {
        self.limits = limits
    }

    /// The actions for `demand` and `pods` at `now`. `eventsRecordedSince`: when pods' events
    /// were last seen not being recorded (no recorder, or a backlog); a pod's silence counts
    /// only from then, since what it said meanwhile may not have reached its row yet.
    public func plan(demand: DemandSnapshot, pods: [FleetPod], now: Date, eventsRecordedSince: Date? = nil) -> [FleetAction] {
        var actions: [FleetAction] = []
        let batches = Dictionary(demand.batches.map { ($0.batchID, $0) }, uniquingKeysWith: { first, _ in first })
        var active: [FleetPod] = []

        for pod in pods where pod.state != .terminated && pod.providerStatus != .gone {
            let work = pod.batchID.flatMap { batches[$0] }
            let hasWork = (work?.remainingItems ?? 0) > 0
            if pod.state == .gpuFailed {
                actions.append(.terminate(podID: pod.id, reason: "its GPU check failed"))
            } else if pod.state == .faulted {
                // Its worker handed its work back and left: ComfyUI on it does not work.
                actions.append(.terminate(podID: pod.id, reason: "its worker reported it faulted"))
            } else if !hasWork {
                // Every item of its batch is settled, so the pod holds no delivery.
                actions.append(.terminate(podID: pod.id, reason: "its batch has no work left"))
            } else if pod.providerStatus == .exited {
                if pod.stopRequested {
                    actions.append(.terminate(podID: pod.id, reason: "drained"))
                } else if pod.resumeAttempts < limits.maxResumeAttempts {
                    actions.append(.resume(podID: pod.id))
                    active.append(pod)
                } else {
                    actions.append(.terminate(podID: pod.id, reason: "reclaimed and could not be resumed; replacing it"))
                }
            } else if pod.stopRequested {
                continue  // draining: waits for its exit
            } else if PodState.notYetWorking.contains(pod.state),
                      now.timeIntervalSince(max(pod.requestedAt, pod.lastSeenAt ?? pod.requestedAt)) > limits.startTimeoutSeconds {
                // Counted from the rental, a resume, or the worker's last word, whichever is last.
                actions.append(.terminate(podID: pod.id, reason: "still starting after \(Int(limits.startTimeoutSeconds)) s; replacing it"))
            } else if pod.providerStatus == .running, !PodState.notYetWorking.contains(pod.state),
                      now.timeIntervalSince(max(pod.lastSeenAt ?? pod.requestedAt, eventsRecordedSince ?? .distantPast)) > limits.silentAfterSeconds {
                // The container runs (`sleep infinity`) but its worker is gone: its deliveries
                // went back when its connection closed; the GPU would idle at our cost.
                actions.append(.terminate(podID: pod.id, reason: "no word from its worker for \(Int(limits.silentAfterSeconds)) s; replacing it"))
            } else if pod.providerStatus == .running, !PodState.notYetWorking.contains(pod.state), let progressAt = pod.progressAt,
                      now.timeIntervalSince(max(progressAt, eventsRecordedSince ?? .distantPast)) > limits.stallAfterSeconds {
                // Alive (its heartbeats come) but stuck: a lost prompt, a hung ComfyUI, a dead
                // consumer. Its deliveries go back when its connection closes.
                actions.append(.replaceStalled(podID: pod.id, reason: Self.stallReason(pod, now: now, allowed: limits.stallAfterSeconds)))
            } else {
                active.append(pod)
            }
        }

        // Over the caps (they were lowered): drain the newest pods, idle ones first.
        var spend = active.reduce(0) { $0 + $1.priceUSDPerHour }
        var count = active.count
        if count > limits.maxPods || spend > limits.budgetUSDPerHour + 1e-9 {
            let victims = active.sorted { ($0.holdsNoWork ? 0 : 1, $1.requestedAt) < ($1.holdsNoWork ? 0 : 1, $0.requestedAt) }
            for pod in victims where count > limits.maxPods || spend > limits.budgetUSDPerHour + 1e-9 {
                actions.append(pod.holdsNoWork
                    ? .terminate(podID: pod.id, reason: "over the pod or budget limit")
                    : .drain(podID: pod.id, reason: "over the pod or budget limit"))
                active.removeAll { $0.id == pod.id }
                count -= 1
                spend -= pod.priceUSDPerHour
            }
        }

        // Pods wanted per batch; batches without a pod first, then by remaining hours.
        let perBatch = Dictionary(grouping: active, by: { $0.batchID ?? -1 })
        let ordered = demand.batches.filter { $0.remainingItems > 0 }.sorted {
            let a = perBatch[$0.batchID]?.count ?? 0, b = perBatch[$1.batchID]?.count ?? 0
            if (a == 0) != (b == 0) { return a == 0 }
            return $0.remainingWorkHours > $1.remainingWorkHours
        }
        for batch in ordered {
            let wanted = min(batch.remainingItems, max(1, Int((batch.remainingWorkHours / limits.targetHoursPerPod).rounded(.up))))
            let have = perBatch[batch.batchID] ?? []
            if have.count < wanted {
                for _ in have.count..<wanted {
                    guard count < limits.maxPods, spend + limits.newPodUSDPerHour <= limits.budgetUSDPerHour + 1e-9 else { break }
                    actions.append(.rent(batchID: batch.batchID, payloadBytes: batch.payloadBytes))
                    count += 1
                    spend += limits.newPodUSDPerHour
                }
            } else if have.count > wanted {
                // Less work than pods: only pods that have not started working go.
                for pod in have.filter({ PodState.notYetWorking.contains($0.state) }).prefix(have.count - wanted) {
                    actions.append(.terminate(podID: pod.id, reason: "more pods than work"))
                }
            }
        }
        return actions
    }

    /// E.g. "stalled: no progress from its worker for 1843 s (allowed 1800 s), generating
    /// for 1843 s; replacing it".
    static func stallReason(_ pod: FleetPod, now: Date, allowed: Double) -> String {
        // Rounded up: past the bound by a fraction must not read as "for 6 s (allowed 6 s)".
        let stalled = Int(now.timeIntervalSince(pod.progressAt ?? now).rounded(.up))
        var doing = ""
        if let activity = pod.activity {
            doing = ", \(activity)" + (pod.activitySince.map { " for \(Int(now.timeIntervalSince($0))) s" } ?? "")
        }
        return "stalled: no progress from its worker for \(stalled) s (allowed \(Int(allowed)) s)\(doing); replacing it"
    }
}
