/// A batch as planned: its items, assets in download order, items in generation order,
/// the predicted timeline of one pod, and the cost estimate.
public struct PlannedBatch: Sendable {
    public var checkpoints: [Int32]
    /// Global asset indices in download order.
    public var downloadOrder: [Int32]
    /// Global item indices in generation order.
    public var generationOrder: [Int32]
    public var payloadBytes: Int64
    public var orderStrategy: String
    public var timeline: Timeline
    public var estimate: BatchEstimate
}

/// Cost and time of a batch before anything is rented.
public struct BatchEstimate: Sendable, Equatable, Codable {
    public var images: Int
    public var payloadGB: Double
    /// Pod volume: payload + toolchain.
    public var volumeGB: Int
    /// Pod start, toolchain and every download, per pod.
    public var setupHours: Double
    /// GPU hours of generation for the whole batch.
    public var runHours: Double
    /// Pods to run it so each has at least the target hours of work (at least one).
    public var pods: Int
    public var usd: Double
    public var usdPerImage: Double

    enum CodingKeys: String, CodingKey {
        case images
        case payloadGB = "payload_gb"
        case volumeGB = "volume_gb"
        case setupHours = "setup_hours"
        case runHours = "run_hours"
        case pods, usd
        case usdPerImage = "usd_per_image"
    }

    public init(images: Int, payloadBytes: Int64, pods requested: Int? = nil, policy: PlanningPolicy, gpu: GPUProfile) {
        self.images = images
        payloadGB = Double(payloadBytes) / 1e9
        volumeGB = gpu.volumeGB(payloadBytes: payloadBytes)
        setupHours = (gpu.fixedSetupSeconds + Double(payloadBytes) / gpu.bytesPerSecond) / 3600
        runHours = Double(images) / gpu.imagesPerHour
        pods = requested ?? max(1, Int(runHours / policy.targetHoursPerPod))
        // Every pod pays its own setup; the generation hours are shared among them.
        usd = gpu.podUSDPerHour(volumeGB: volumeGB) * (Double(pods) * setupHours + runHours)
        usdPerImage = images > 0 ? usd / Double(images) : 0
    }
}

/// A whole plan: batches, and what could not be planned.
public struct Plan: Sendable {
    public var batches: [PlannedBatch]
    public var unplannable: [BatchFormer.Unplannable]
}

/// The planner: pure, no I/O. Forms batches by policy, then orders each.
public enum Planner {
    public static func plan(_ work: PendingWork, policy: PlanningPolicy = .init(), gpu: GPUProfile = .init()) -> Plan {
        let (formed, unplannable) = BatchFormer.form(work, policy: policy, gpu: gpu)
        let batches = Parallel.map(formed.count) { index in
            let batch = formed[index]
            let graph = BatchGraph(work: work, items: batch.items)
            let ordered = BatchOrderer.order(graph, gpu: gpu, choice: policy.order)
            return PlannedBatch(
                checkpoints: batch.checkpoints,
                downloadOrder: ordered.downloadOrder.map { graph.globalAssets[Int($0)] },
                generationOrder: ordered.generationOrder.map { graph.globalItems[Int($0)] },
                payloadBytes: batch.payloadBytes, orderStrategy: ordered.strategy, timeline: ordered.timeline,
                estimate: BatchEstimate(images: batch.items.count, payloadBytes: batch.payloadBytes, policy: policy, gpu: gpu))
        }
        return Plan(batches: batches, unplannable: unplannable)
    }
}
