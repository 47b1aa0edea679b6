import Foundation
import SpotqCore
import Testing

/// The planner's stall rule (SPOTQ_POD_STALL_SECONDS): a pod whose worker beats but gets
/// nowhere is replaced; an idle one, a slow one still moving, and one just started are not.
@Suite("fleet planner: stalled pods")
struct FleetPlannerStallTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let demand = DemandSnapshot(
        takenAt: Date(timeIntervalSince1970: 1_800_000_000),
        batches: [DemandSnapshot.BatchDemand(batchID: 1, ready: 300, unacknowledged: 0, consumers: 0, remainingItems: 300, remainingWorkHours: 1, payloadBytes: 20_000_000_000)],
        unplanned: [])

    /// A running pod of batch 1 that beat a minute ago, saying `activity` since `since` s ago
    /// with its progress mark `progress` s ago.
    func pod(_ id: Int64, _ activity: WorkerActivity?, since: TimeInterval, progress: TimeInterval?, state: PodState = .generating) -> FleetPod {
        FleetPod(
            id: id, batchID: 1, state: state, providerStatus: .running, interruptible: true, requestedAt: now.addingTimeInterval(-7_200),
            priceUSDPerHour: 0.12, lastSeenAt: now.addingTimeInterval(-60), activity: activity, activitySince: now.addingTimeInterval(-since),
            progressAt: progress.map { now.addingTimeInterval(-$0) })
    }

    func planner(stall: Double = 1_800) -> FleetPlanner {
        var limits = FleetPlanner.Limits()
        limits.stallAfterSeconds = stall
        return FleetPlanner(limits: limits)
    }

    @Test func aWorkerThatBeatsButHasMadeNoProgressPastTheBound_isReplacedWithItsReason() {
        let stuck = pod(1, .generating, since: 1_850, progress: 1_850)
        let actions = planner().plan(demand: demand, pods: [stuck], now: now)
        #expect(actions == [
            .replaceStalled(podID: 1, reason: "stalled: no progress from its worker for 1850 s (allowed 1800 s), generating for 1850 s; replacing it"),
            .rent(batchID: 1, payloadBytes: 20_000_000_000),
        ])
    }

    @Test func idleSlowButMovingAndJustBusy_areLeftAlone() {
        let pods = [
            // Waiting for work: its mark keeps up with the clock (the heartbeat a minute ago).
            pod(1, .waitingForWork, since: 36_000, progress: 60),
            // A huge model for an hour, its bytes advancing up to its last heartbeat.
            pod(2, .downloading, since: 3_600, progress: 61, state: .downloading),
            // One image for 29 minutes: slow, within the bound.
            pod(3, .generating, since: 1_740, progress: 1_740),
            // Said nothing of its activity (a worker without reports, or just resumed).
            pod(4, nil, since: 0, progress: nil),
        ]
        var limits = FleetPlanner.Limits()
        limits.targetHoursPerPod = 0.1  // wants all four
        #expect(FleetPlanner(limits: limits).plan(demand: demand, pods: pods, now: now).filter {
            if case .replaceStalled = $0 { true } else { false }
        }.isEmpty)
    }

    @Test func theBoundIsTheOperators_andAStartingPodIsLeftToTheStartTimeout() {
        let waiting = pod(1, .waitingForAsset, since: 700, progress: 700)
        #expect(planner().plan(demand: demand, pods: [waiting], now: now).isEmpty)
        #expect(planner(stall: 600).plan(demand: demand, pods: [waiting], now: now).first == .replaceStalled(
            podID: 1, reason: "stalled: no progress from its worker for 700 s (allowed 600 s), waiting_for_asset for 700 s; replacing it"))
        // Still `starting` (GPU check, manifest, ComfyUI coming up): SPOTQ_POD_START_TIMEOUT_SECONDS decides.
        let starting = pod(2, .starting, since: 700, progress: 700, state: .starting)
        #expect(planner(stall: 600).plan(demand: demand, pods: [starting], now: now).isEmpty)
    }

    @Test func whileEventsWentUnrecorded_aStallCountsOnlyFromWhenTheyAreRecordedAgain() {
        let stuck = pod(1, .generating, since: 4_000, progress: 4_000)
        // The recorder caught up 100 s ago: what the pod said before may not be in its row yet.
        let actions = planner().plan(demand: demand, pods: [stuck], now: now, eventsRecordedSince: now.addingTimeInterval(-100))
        #expect(actions.isEmpty)
    }

    @Test func aSilentPod_isReplacedAsSilentNotAsStalled() {
        var gone = pod(1, .generating, since: 4_000, progress: 4_000)
        gone.lastSeenAt = now.addingTimeInterval(-400)
        #expect(planner().plan(demand: demand, pods: [gone], now: now).first == .terminate(podID: 1, reason: "no word from its worker for 300 s; replacing it"))
    }

    @Test func theStallBound_isReadFromSPOTQ_POD_STALL_SECONDS_withItsDefault() throws {
        #expect(try FleetSettings.from(SettingsSource(environment: [:]), targetHoursPerPod: 3).limits.stallAfterSeconds == 1_800)
        #expect(try FleetSettings.from(SettingsSource(environment: ["SPOTQ_POD_STALL_SECONDS": "900"]), targetHoursPerPod: 3).limits.stallAfterSeconds == 900)
        #expect(throws: (any Error).self) { try FleetSettings.from(SettingsSource(environment: ["SPOTQ_POD_STALL_SECONDS": "1"]), targetHoursPerPod: 3) }
    }
}
