import SpotqCore
import Testing

/// Builds planner input in a line per checkpoint.
struct WorkBuilder {
    var work = PendingWork()
    var nextID: Int64 = 1

    mutating func checkpoint(_ name: String, gb: Double) -> Int32 {
        work.asset(name, kind: .checkpoint, sizeBytes: Int64(gb * 1e9))
    }

    mutating func lora(_ name: String, gb: Double) -> Int32 {
        work.asset(name, kind: .lora, sizeBytes: Int64(gb * 1e9))
    }

    mutating func items(_ count: Int, checkpoint: Int32, loras: [Int32] = [], priority: Int32 = 0) {
        for _ in 0..<count {
            work.addItem(id: nextID, checkpoint: checkpoint, loras: loras, priority: priority, createdAt: nextID)
            nextID += 1
        }
    }
}

@Suite("planner: batches by the operator's rules")
struct BatchFormerTests {
    let gpu = GPUProfile()
    let policy = PlanningPolicy()

    @Test func aCheckpointWithEnoughWork_getsABatchOfItsOwn() {
        var builder = WorkBuilder()
        let a = builder.checkpoint("a.safetensors", gb: 7)
        let b = builder.checkpoint("b.safetensors", gb: 7)
        builder.items(2_000, checkpoint: a)
        builder.items(400, checkpoint: b)
        let plan = Planner.plan(builder.work, policy: policy, gpu: gpu)
        #expect(plan.batches.map(\.checkpoints) == [[a], [b]])
        #expect(plan.batches.map(\.estimate.images) == [2_000, 400])
    }

    @Test func smallCheckpoints_areCombinedUntilABatchHoldsAnHourOfWork() {
        var builder = WorkBuilder()
        let checkpoints = (0..<8).map { builder.checkpoint("c\($0).safetensors", gb: 7) }
        for (index, checkpoint) in checkpoints.enumerated() { builder.items(100 - index, checkpoint: checkpoint) }
        let plan = Planner.plan(builder.work, policy: policy, gpu: gpu)
        // 257 images make an hour: 100 + 99 + 98 = 297 is the first batch, and so on.
        #expect(plan.batches.map(\.checkpoints.count) == [3, 3, 2])
        #expect(plan.batches[0].estimate.runHours >= 1)
        #expect(plan.batches.allSatisfy { $0.payloadBytes <= policy.payloadCapBytes })
    }

    @Test func combiningStopsAtThePayloadCap() {
        var builder = WorkBuilder()
        let checkpoints = (0..<30).map { builder.checkpoint("c\($0).safetensors", gb: 7) }
        for checkpoint in checkpoints { builder.items(5, checkpoint: checkpoint) }
        let plan = Planner.plan(builder.work, policy: policy, gpu: gpu)
        // 17 checkpoints of 7 GB fit under 120 GB.
        #expect(plan.batches.map(\.checkpoints.count) == [17, 13])
        #expect(plan.batches.allSatisfy { $0.payloadBytes <= 120_000_000_000 })
    }

    @Test func aCheckpointWithMoreWorkThanABatchHolds_isSplit() {
        var builder = WorkBuilder()
        let a = builder.checkpoint("a.safetensors", gb: 7)
        builder.items(10_000, checkpoint: a)
        let plan = Planner.plan(builder.work, policy: policy, gpu: gpu)
        // 24 h × 257 images/h = 6,168 images per batch at most.
        #expect(plan.batches.map(\.estimate.images) == [6_168, 3_832])
        #expect(plan.batches[0].estimate.pods == 8)
    }

    @Test func loRAsBeyondThePayloadCap_goToASecondBatchOfTheSameCheckpoint() {
        var builder = WorkBuilder()
        let a = builder.checkpoint("a.safetensors", gb: 7)
        let loras = (0..<600).map { builder.lora("l\($0).safetensors", gb: 0.228) }
        for lora in loras { builder.items(2, checkpoint: a, loras: [lora]) }
        let plan = Planner.plan(builder.work, policy: policy, gpu: gpu)
        #expect(plan.batches.count == 2)
        #expect(plan.batches.allSatisfy { $0.checkpoints == [a] && $0.payloadBytes <= policy.payloadCapBytes })
        #expect(plan.batches.map(\.estimate.images).reduce(0, +) == 1_200)
    }

    @Test func itemsThatCanNeverFit_areReportedNotDropped() {
        var builder = WorkBuilder()
        let huge = builder.checkpoint("huge.safetensors", gb: 130)
        let ok = builder.checkpoint("ok.safetensors", gb: 7)
        builder.items(3, checkpoint: huge)
        builder.items(3, checkpoint: ok)
        let plan = Planner.plan(builder.work, policy: policy, gpu: gpu)
        #expect(plan.unplannable.count == 3)
        #expect(plan.unplannable[0].reason.contains("exceeds the payload cap"))
        #expect(plan.batches.map(\.checkpoints) == [[ok]])
    }

    @Test func higherPriorityItems_areGeneratedFirstAmongEquallyReadyOnes() {
        var builder = WorkBuilder()
        let a = builder.checkpoint("a.safetensors", gb: 7)
        builder.items(5, checkpoint: a)
        builder.items(1, checkpoint: a, priority: 10)
        let plan = Planner.plan(builder.work, policy: policy, gpu: gpu)
        #expect(builder.work.items[Int(plan.batches[0].generationOrder[0])].priority == 10)
    }
}

@Suite("planner: estimates")
struct BatchEstimateTests {
    @Test func estimate_usesTheSeedsA4000FiguresByDefault() {
        let estimate = BatchEstimate(images: 1_000, payloadBytes: 7_000_000_000, policy: PlanningPolicy(), gpu: GPUProfile())
        #expect(estimate.volumeGB == 18)
        #expect(abs(estimate.runHours - 1_000.0 / 257) < 1e-9)
        #expect(abs(estimate.setupHours - (300 + 7e9 / 197e6) / 3600) < 1e-9)
        #expect(estimate.pods == 1)
        let hourly = 0.12 + 0.10 * 18 / 730
        #expect(abs(estimate.usd - hourly * (estimate.setupHours + estimate.runHours)) < 1e-9)
        #expect(abs(estimate.usdPerImage - estimate.usd / 1_000) < 1e-12)
    }

    @Test func everyPod_paysItsOwnSetup() {
        let one = BatchEstimate(images: 3_000, payloadBytes: 70_000_000_000, pods: 1, policy: PlanningPolicy(), gpu: GPUProfile())
        let three = BatchEstimate(images: 3_000, payloadBytes: 70_000_000_000, pods: 3, policy: PlanningPolicy(), gpu: GPUProfile())
        #expect(three.usd > one.usd)
        #expect(abs((three.usd - one.usd) - 2 * one.setupHours * GPUProfile().podUSDPerHour(volumeGB: one.volumeGB)) < 1e-9)
    }
}
