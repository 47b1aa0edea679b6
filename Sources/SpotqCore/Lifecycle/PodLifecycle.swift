/// Where a rented pod (`pods.state`) is in its life; ``after(_:)`` decides every move.
///
/// The pod's own reports (``PodEvent/reported(_:)``) move it only among the states a worker
/// can be in; what the provider says (reclaimed) and what spotq does (rent, resume,
/// terminate) are the provisioner's. A pod cannot report itself reclaimed or terminated,
/// and a reclaimed, GPU-failed, faulted or terminated pod's late reports change nothing.
public enum PodState: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Written by the provisioner before it asks the provider, so a crash in between leaves
    /// a trace. Out: the worker's first report (→ starting…), or terminated.
    case requested
    /// The worker runs and checks the GPU. In: the worker's report, or the provisioner
    /// resuming a reclaimed pod. Out: the worker's next report.
    case starting
    /// The GPU check failed; the worker took no work and left. In: the worker's report.
    /// Out: the provisioner terminates it.
    case gpuFailed = "gpu_failed"
    /// The worker found the pod unable to work for reasons not its items' (ComfyUI
    /// unreachable or failing SPOTQ_POD_FAULT_LIMIT times in a row, or not seeing the
    /// worker's models); it handed its work back and left (exit 5). In: the worker's report,
    /// from any working state. Out: the provisioner terminates it (and rents a replacement
    /// while demand remains), like ``gpuFailed``.
    case faulted
    /// The worker downloads its batch's models. In: the worker's report.
    case downloading
    /// The worker consumes its batch's work. In: the worker's report.
    case generating
    /// The worker stopped consuming (termination notice, batch finished) and leaves. In: the
    /// worker's report.
    case draining
    /// The provider stopped it without spotq asking (a spot reclaim); its volume is kept.
    /// In: the provisioner's reconciliation. Out: resumed (→ starting) or terminated.
    case reclaimed
    /// Gone for good (`terminated_at` set). In: the provisioner. Out: never.
    case terminated

    public var description: String { rawValue }

    /// The states a worker reports about itself (`pod.<state>` events).
    public static let reportable: [PodState] = [.starting, .gpuFailed, .downloading, .generating, .draining, .faulted]
    /// Every state but ``terminated``.
    public static var live: [PodState] { allCases.filter { $0 != .terminated } }
    /// States whose worker holds no delivery yet.
    public static let holdingNoWork: [PodState] = [.requested, .starting, .downloading, .gpuFailed, .faulted]
    /// States in which the pod has not started working (the start timeout runs).
    public static let notYetWorking: [PodState] = [.requested, .starting]

    public func after(_ event: PodEvent) -> PodState? {
        switch (self, event) {
        case (.terminated, _): nil
        case (_, .terminated): .terminated
        case (.reclaimed, .resumed): .starting
        case (.reclaimed, .reclaimed), (_, .resumed): nil
        case (_, .reclaimed): .reclaimed
        case (.reclaimed, .reported), (.gpuFailed, .reported), (.faulted, .reported): nil
        case (_, .reported(let state)): PodState.reportable.contains(state) ? state : nil
        }
    }

    public static func sources(of event: PodEvent) -> [PodState] {
        allCases.filter { $0.after(event) != nil }
    }

    /// Where `event` moves a row to: every event of this lifecycle has one target, whatever
    /// the source (the lifecycle tests check it), so one UPDATE applies it.
    public static func target(of event: PodEvent) -> PodState {
        let targets = Set(sources(of: event).compactMap { $0.after(event) })
        precondition(targets.count == 1, "\(event) has \(targets.count) targets")
        return targets.first!
    }
}

public enum PodEvent: Sendable, Hashable, CustomStringConvertible {
    /// The pod's worker said it is in this state (a `pod.<state>` event).
    case reported(PodState)
    /// The provider reports an exit spotq did not ask for.
    case reclaimed
    /// The provisioner asked the provider to resume a reclaimed pod.
    case resumed
    /// The provisioner terminated it (or found it gone, or never rented).
    case terminated

    /// Every event, for exhaustive tests.
    public static var allCases: [PodEvent] {
        PodState.allCases.map(PodEvent.reported) + [.reclaimed, .resumed, .terminated]
    }

    public var description: String {
        switch self {
        case .reported(let state): "reported(\(state))"
        case .reclaimed: "reclaimed"
        case .resumed: "resumed"
        case .terminated: "terminated"
        }
    }
}
