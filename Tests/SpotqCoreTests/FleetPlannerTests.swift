import Foundation
import SpotqCore
import Testing

@Suite("fleet planner: sizing, recovery, caps")
struct FleetPlannerTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func batch(_ id: Int64, items: Int, hours: Double, ready: Int? = nil) -> DemandSnapshot.BatchDemand {
        DemandSnapshot.BatchDemand(batchID: id, ready: ready ?? items, unacknowledged: items - (ready ?? items), consumers: 0, remainingItems: items, remainingWorkHours: hours, payloadBytes: 20_000_000_000)
    }

    func pod(_ id: Int64, batch: Int64?, state: PodState, provider: FleetPod.ProviderStatus? = .running, age: TimeInterval = 60, price: Double = 0.12, resumes: Int = 0, stopped: Bool = false) -> FleetPod {
        FleetPod(id: id, batchID: batch, state: state, providerStatus: provider, interruptible: true, requestedAt: now.addingTimeInterval(-age), priceUSDPerHour: price, resumeAttempts: resumes, stopRequested: stopped, lastSeenAt: now)
    }

    func planner(maxPods: Int = 10, budget: Double = 10) -> FleetPlanner {
        var limits = FleetPlanner.Limits()
        limits.targetHoursPerPod = 3
        limits.maxPods = maxPods
        limits.budgetUSDPerHour = budget
        limits.newPodUSDPerHour = 0.17
        limits.startTimeoutSeconds = 600
        return FleetPlanner(limits: limits)
    }

    @Test func podsPerBatch_followRemainingWorkHoursOverTheTargetPerPod() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 2_000, hours: 7.8), batch(2, items: 10, hours: 0.04)], unplanned: [])
        let actions = planner().plan(demand: demand, pods: [], now: now)
        #expect(actions.filter { $0 == .rent(batchID: 1, payloadBytes: 20_000_000_000) }.count == 3)  // ceil(7.8 / 3)
        #expect(actions.filter { $0 == .rent(batchID: 2, payloadBytes: 20_000_000_000) }.count == 1)
    }

    @Test func unacknowledgedWorkCountsAsDemand_soABatchWithNothingReadyKeepsItsPods() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 300, hours: 6, ready: 0)], unplanned: [])
        let pods = [pod(1, batch: 1, state: .generating), pod(2, batch: 1, state: .generating)]
        #expect(planner().plan(demand: demand, pods: pods, now: now).isEmpty)
    }

    @Test func maxPodsAndBudget_capTheFleet_batchesWithoutAPodFirst() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 5_000, hours: 30), batch(2, items: 100, hours: 1)], unplanned: [])
        let capped = planner(maxPods: 3).plan(demand: demand, pods: [pod(1, batch: 1, state: .generating)], now: now)
        #expect(capped == [.rent(batchID: 2, payloadBytes: 20_000_000_000), .rent(batchID: 1, payloadBytes: 20_000_000_000)])
        // 0.12 running + 0.17 per new pod within 0.50 USD/h: two more.
        let budgeted = planner(budget: 0.50).plan(demand: demand, pods: [pod(1, batch: 1, state: .generating)], now: now)
        #expect(budgeted.count == 2)
    }

    @Test func aPodHoldingWork_isDrainedNotTerminated_whenTheCapsShrink() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 5_000, hours: 30)], unplanned: [])
        let pods = [pod(1, batch: 1, state: .generating, age: 500), pod(2, batch: 1, state: .generating, age: 100), pod(3, batch: 1, state: .downloading, age: 50)]
        let actions = planner(maxPods: 1).plan(demand: demand, pods: pods, now: now)
        #expect(actions.contains(.terminate(podID: 3, reason: "over the pod or budget limit")))
        #expect(actions.contains(.drain(podID: 2, reason: "over the pod or budget limit")))
        #expect(!actions.contains { if case .terminate(1, _) = $0 { true } else { false } })
        #expect(!actions.contains { if case .drain(1, _) = $0 { true } else { false } })
    }

    @Test func aReclaimedPodIsResumedOnce_thenReplaced() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 300, hours: 1)], unplanned: [])
        let first = planner().plan(demand: demand, pods: [pod(1, batch: 1, state: .reclaimed, provider: .exited)], now: now)
        #expect(first == [.resume(podID: 1)])
        let again = planner().plan(demand: demand, pods: [pod(1, batch: 1, state: .reclaimed, provider: .exited, resumes: 1)], now: now)
        #expect(again == [.terminate(podID: 1, reason: "reclaimed and could not be resumed; replacing it"), .rent(batchID: 1, payloadBytes: 20_000_000_000)])
    }

    @Test func aBrokenGPU_aStuckStart_andAFinishedBatch_endTheirPods() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 300, hours: 1)], unplanned: [])
        var stuck = pod(2, batch: 1, state: .starting, provider: .starting, age: 601)
        stuck.lastSeenAt = nil
        let actions = planner().plan(demand: demand, pods: [
            pod(1, batch: 1, state: .gpuFailed),
            stuck,
            pod(3, batch: 9, state: .draining),
        ], now: now)
        #expect(actions.contains(.terminate(podID: 1, reason: "its GPU check failed")))
        #expect(actions.contains(.terminate(podID: 2, reason: "still starting after 600 s; replacing it")))
        #expect(actions.contains(.terminate(podID: 3, reason: "its batch has no work left")))
        #expect(actions.filter { if case .rent = $0 { true } else { false } }.count == 1)
    }

    @Test func aPodItsWorkerReportedFaulted_isTerminatedAndReplaced_likeABrokenGPU() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 300, hours: 1)], unplanned: [])
        let actions = planner().plan(demand: demand, pods: [pod(1, batch: 1, state: .faulted)], now: now)
        #expect(actions == [.terminate(podID: 1, reason: "its worker reported it faulted"), .rent(batchID: 1, payloadBytes: 20_000_000_000)])
        // With no work left it is ended all the same, and not replaced.
        let idle = DemandSnapshot(takenAt: now, batches: [batch(1, items: 0, hours: 0)], unplanned: [])
        #expect(planner().plan(demand: idle, pods: [pod(1, batch: 1, state: .faulted)], now: now) == [.terminate(podID: 1, reason: "its worker reported it faulted")])
    }

    @Test func aRunningPodWhoseWorkerFellSilent_isReplaced_butAQuietStartIsLeftToTheStartTimeout() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 3_000, hours: 9)], unplanned: [])
        var silent = pod(1, batch: 1, state: .generating, age: 3_600)
        silent.lastSeenAt = now.addingTimeInterval(-301)
        var chatty = pod(2, batch: 1, state: .generating, age: 3_600)
        chatty.lastSeenAt = now.addingTimeInterval(-30)
        let starting = pod(3, batch: 1, state: .starting, provider: .running, age: 400)
        let actions = planner().plan(demand: demand, pods: [silent, chatty, starting], now: now)
        #expect(actions == [.terminate(podID: 1, reason: "no word from its worker for 300 s; replacing it"), .rent(batchID: 1, payloadBytes: 20_000_000_000)])
    }

    @Test func aPodSpotqDrained_isTerminatedOnceItExited() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 300, hours: 1)], unplanned: [])
        let waiting = planner().plan(demand: demand, pods: [pod(1, batch: 1, state: .draining, stopped: true), pod(2, batch: 1, state: .generating)], now: now)
        #expect(waiting.isEmpty)
        let exited = planner().plan(demand: demand, pods: [pod(1, batch: 1, state: .draining, provider: .exited, stopped: true), pod(2, batch: 1, state: .generating)], now: now)
        #expect(exited == [.terminate(podID: 1, reason: "drained")])
    }

    @Test func aPodsSilence_countsOnlyFromWhenEventsWereLastSeenUnrecorded() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 30, hours: 1)], unplanned: [])
        var quiet = pod(1, batch: 1, state: .generating, age: 3_600)
        quiet.lastSeenAt = now.addingTimeInterval(-600)
        // Its last word is ten minutes old, but events were not being recorded a minute ago:
        // what it said since may still be on its way.
        #expect(planner().plan(demand: demand, pods: [quiet], now: now, eventsRecordedSince: now.addingTimeInterval(-60)).isEmpty)
        let judged = planner().plan(demand: demand, pods: [quiet], now: now, eventsRecordedSince: now.addingTimeInterval(-400))
        #expect(judged.contains(.terminate(podID: 1, reason: "no word from its worker for 300 s; replacing it")))
    }

    @Test func morePodsThanWork_onlyEndsPodsThatHaveNotStartedWorking() {
        let demand = DemandSnapshot(takenAt: now, batches: [batch(1, items: 30, hours: 0.1)], unplanned: [])
        let actions = planner().plan(demand: demand, pods: [pod(1, batch: 1, state: .generating), pod(2, batch: 1, state: .generating), pod(3, batch: 1, state: .starting)], now: now)
        #expect(actions == [.terminate(podID: 3, reason: "more pods than work")])
    }
}

@Suite("bids, costs and price awareness")
struct FleetEconomicsTests {
    @Test func heartbeats_areRoutedToTheServersPodEvents() {
        let event = SpotqEvent(eventKey: "k", kind: .heartbeat, batchID: 7, pod: SpotqEvent.Pod(provider: "runpod", id: "p"))
        #expect(event.routingKey == "pod.heartbeat.7")
        #expect(BrokerNames.recordedEventKeys.contains("pod.#"))
    }

    @Test func theSeedsBidLadder_startsAt012_andRisesByACentToPlusFiveCents() {
        #expect(BidLadder().bids == [0.12, 0.13, 0.14, 0.15, 0.16, 0.17])
    }

    @Test func podCost_isGPUWhileRunning_plusStorageUntilTerminated() {
        // 2 h running at 0.17 USD/h + a 31 GB volume at 0.10 USD/GB-month for 2 h.
        let running = PodCost.accrued(hours: 2, running: true, priceUSDPerHour: 0.17, volumeGB: 31, storageUSDPerGBMonth: 0.10)
        #expect(abs(running - (0.34 + 31 * 0.10 / 730 * 2)) < 1e-12)
        let stopped = PodCost.accrued(hours: 2, running: false, priceUSDPerHour: 0.17, volumeGB: 31, storageUSDPerGBMonth: 0.10)
        #expect(abs(stopped - 31 * 0.10 / 730 * 2) < 1e-12)
    }

    @Test func interruptionAdjustedCost_reproducesTheSeedsExample() {
        // Seed 001: "($0.78 × 1.05) + (3/60 × $0.78) = $0.84/hr": 3 minutes of recovery per
        // hour at a 5% rate is one hour per interruption. The sum is 0.858; the seed's 0.84 is
        // an arithmetic slip.
        let adjusted = PodCost.interruptionAdjusted(priceUSDPerHour: 0.78, interruptionsPerHour: 0.05, recoveryHours: 1)
        #expect(abs(adjusted - 0.858) < 1e-9)
    }

    @Test func theGPUTypeIsChosenByExpectedUSDPerImage() {
        let candidates = [GPUChoice.Candidate(gpuType: "A4000", imagesPerHour: 257), GPUChoice.Candidate(gpuType: "A40", imagesPerHour: 600)]
        let prices = [GPUChoice.Price(gpuType: "A4000", spotMinimumBid: 0.10, onDemand: 0.32), GPUChoice.Price(gpuType: "A40", spotMinimumBid: 0.30, onDemand: 0.69)]
        let choice = GPUChoice.choose(candidates: candidates, prices: prices, baseBid: 0.12, spotAlertMultiple: 3, interruptionsPerHour: 0.05, recoveryHours: 0.1)
        // A4000 spot: 0.12 × (1 + 0.05 + 0.005) / 257 ≈ 0.00049; A40 spot: 0.30 × 1.055 / 600 ≈ 0.00053.
        #expect(choice?.gpuType == "A4000")
        #expect(choice?.interruptible == true)
        #expect(choice?.alert == nil)
    }

    @Test func spotPastTheAlertMultiple_goesOnDemandWithAnAlert() {
        let prices = [GPUChoice.Price(gpuType: "A4000", spotMinimumBid: 0.45, onDemand: 0.32)]
        let choice = GPUChoice.choose(
            candidates: [GPUChoice.Candidate(gpuType: "A4000", imagesPerHour: 257)], prices: prices, baseBid: 0.12, spotAlertMultiple: 3,
            interruptionsPerHour: 0, recoveryHours: 0)
        #expect(choice?.interruptible == false)
        #expect(choice?.alert?.contains("over 3.0× the 0.12 USD/h base bid") == true)
    }

    @Test func podSettings_wantSleepInfinity_andReadableGPUCandidates() throws {
        #expect(throws: ConfigurationError.self) {
            try FleetSettings.from(SettingsSource(environment: ["SPOTQ_POD_DOCKER_ARGS": "bash /start.sh"]), targetHoursPerPod: 3)
        }
        let settings = try FleetSettings.from(SettingsSource(environment: [
            "SPOTQ_POD_DOCKER_ARGS": "bash -c '/start.sh; sleep infinity'", "SPOTQ_GPU_CANDIDATES": "NVIDIA RTX A4000:257, NVIDIA RTX A5000:330",
        ]), targetHoursPerPod: 3)
        #expect(settings.candidates.map(\.imagesPerHour) == [257, 330])
        #expect(settings.template.volumeGB(payloadBytes: 60_500_000_000) == 72)  // payload + 11 GB
        #expect(throws: ConfigurationError.self) { try FleetSettings.parseCandidates("A4000") }
    }

    @Test func demandSnapshots_roundTripAsJSON() throws {
        let snapshot = DemandSnapshot(
            takenAt: Date(timeIntervalSince1970: 1_800_000_000),
            batches: [DemandSnapshot.BatchDemand(batchID: 3, ready: 10, unacknowledged: 2, consumers: 1, remainingItems: 12, remainingWorkHours: 0.05, payloadBytes: 7)],
            unplanned: [DemandSnapshot.CheckpointDemand(checkpoint: "a.safetensors", items: 4)])
        let data = try DemandSnapshot.encoder.encode(snapshot)
        #expect(String(decoding: data, as: UTF8.self).contains(#""remaining_work_hours":0.05"#))
        #expect(try DemandSnapshot.decoder.decode(DemandSnapshot.self, from: data) == snapshot)
    }
}
