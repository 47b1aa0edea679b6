import ArgumentParser
import Foundation
import SpotqCore

/// `spotq bench plan`: the planner on a synthetic backlog, against the seed's algorithm.
struct PlanBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Time the planner on a synthetic backlog (no servers needed).",
        discussion: """
            Builds N pending items over C checkpoints (2–7 GB) with skewed (Zipf) popularity and
            L LoRAs (10–500 MB, also Zipf), 0 to 3 LoRAs per item, then times: our planner (batches,
            estimates, download and generation order for every batch), and the seed's
            optimizeQueue ported to Swift (checkpoints by LoRA total; for each, filter the whole
            queue) as the baseline. Prints wall time and the process's peak memory growth.
            """
    )

    @Option(help: "Pending items.") var items = 1_000_000
    @Option(help: "Checkpoints.") var checkpoints = 200
    @Option(help: "LoRAs.") var loras = 5_000
    @Option(help: "Random seed (the same input every run).") var seed: UInt64 = 1
    @Option(help: "Timed runs of each phase; the median is printed.") var runs = 3

    func run() async throws {
        let startRSS = PeakMemory.current()
        let generated = ContinuousClock.now
        let work = SyntheticBacklog.make(items: items, checkpoints: checkpoints, loras: loras, seed: seed)
        let generateSeconds = EnqueueBenchmark.seconds(ContinuousClock.now - generated)
        let inputRSS = PeakMemory.current()

        // Median of `runs`: one run on a shared machine is noisy.
        func median(_ body: () -> Void) -> Double {
            let times = (0..<runs).map { _ in
                let start = ContinuousClock.now
                body()
                return EnqueueBenchmark.seconds(ContinuousClock.now - start)
            }.sorted()
            return times[times.count / 2]
        }
        var plan = Planner.plan(work)
        let planRSS = PeakMemory.current()
        let planSeconds = median { plan = Planner.plan(work) }
        let formSeconds = median { _ = BatchFormer.form(work, policy: PlanningPolicy(), gpu: GPUProfile()) }
        var seedQueue = 0
        let seedSeconds = median { seedQueue = SeedOptimizeQueue.run(work) }
        let seedRSS = PeakMemory.current()

        let images = plan.batches.reduce(0) { $0 + $1.estimate.images }
        var table = TextTable([("phase", .left), ("seconds", .right), ("peak memory growth", .right), ("vs seed", .right)])
        table.add(["seed's optimizeQueue (baseline, ported to Swift)", String(format: "%.3f", seedSeconds), ByteCount.format(max(0, seedRSS - planRSS)), "1.00×"])
        table.add(["spotq planner: batches, estimates, orders", String(format: "%.3f", planSeconds), ByteCount.format(max(0, planRSS - inputRSS)), String(format: "%.2f×", seedSeconds / planSeconds)])
        table.add(["  forming batches (part of the above)", String(format: "%.3f", formSeconds), "", ""])
        print("""
            spotq bench plan: \(items) items, \(checkpoints) checkpoints, \(loras) LoRAs (0–3 per item), median of \(runs) runs, \
            \(ProcessInfo.processInfo.activeProcessorCount) cores; input built in \(String(format: "%.2f", generateSeconds)) s, \
            \(ByteCount.format(inputRSS - startRSS)) resident
            \(table.render())
            planner: \(plan.batches.count) batches holding \(images) images, \(plan.unplannable.count) unplannable; \
            seed queue: \(seedQueue) items ordered (no batches, no payload cap)
            peak resident memory of the whole process: \(ByteCount.format(seedRSS))
            """)
    }
}

/// The process's peak resident memory so far (getrusage), in bytes.
enum PeakMemory {
    static func current() -> Int64 {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int64(usage.ru_maxrss) * 1024
    }
}

/// A backlog with skewed popularity, the same for the same seed.
enum SyntheticBacklog {
    struct Random: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Cumulative Zipf(1.1) weights over `count` ranks.
    static func zipf(_ count: Int) -> [Double] {
        var total = 0.0
        var cumulative: [Double] = []
        cumulative.reserveCapacity(count)
        for rank in 1...count {
            total += 1 / pow(Double(rank), 1.1)
            cumulative.append(total)
        }
        return cumulative.map { $0 / total }
    }

    static func sample(_ cumulative: [Double], _ random: inout Random) -> Int {
        let target = Double.random(in: 0..<1, using: &random)
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        return low
    }

    static func make(items: Int, checkpoints: Int, loras: Int, seed: UInt64) -> PendingWork {
        var random = Random(state: seed)
        var work = PendingWork()
        let checkpointIDs = (0..<checkpoints).map {
            work.asset("checkpoint_\($0).safetensors", kind: .checkpoint, sizeBytes: Int64.random(in: 2_000_000_000...7_000_000_000, using: &random))
        }
        let loraIDs = (0..<loras).map {
            work.asset("lora_\($0).safetensors", kind: .lora, sizeBytes: Int64.random(in: 10_000_000...500_000_000, using: &random))
        }
        let checkpointCDF = zipf(checkpoints)
        let loraCDF = zipf(max(1, loras))
        work.reserve(items: items, loras: items * 3 / 2)
        var chosen: [Int32] = []
        for index in 0..<items {
            chosen.removeAll(keepingCapacity: true)
            if loras > 0 {
                for _ in 0..<Int.random(in: 0...3, using: &random) {
                    let lora = loraIDs[sample(loraCDF, &random)]
                    if !chosen.contains(lora) { chosen.append(lora) }
                }
            }
            work.addItem(
                id: Int64(index + 1), checkpoint: checkpointIDs[sample(checkpointCDF, &random)], loras: chosen,
                priority: 0, createdAt: Int64(index))
        }
        return work
    }
}

/// The seed's `buildDependencyGraph` + `optimizeQueue`, ported line for line to Swift (its
/// JavaScript spreads each checkpoint's items into one array with `push(...items)`, which
/// overflows V8's stack for big checkpoints; that part is a plain append here). Returns
/// the number of items it ordered.
enum SeedOptimizeQueue {
    static func run(_ work: PendingWork) -> Int {
        // buildDependencyGraph: checkpoint → lora → (dependencies, size).
        var graph: [Int32: [Int32: (dependencies: Int, size: Int64)]] = [:]
        for item in work.items {
            if graph[item.checkpoint] == nil { graph[item.checkpoint] = [:] }
            for lora in work.loras(of: item) {
                graph[item.checkpoint]![lora, default: (0, work.assets[Int(lora)].sizeBytes)].dependencies += 1
            }
        }
        // optimizeQueue: checkpoints by the sum of their LoRA sizes, then per checkpoint a
        // filter over the whole queue.
        let checkpoints = graph.keys.sorted {
            graph[$0]!.values.reduce(0) { $0 + $1.size } < graph[$1]!.values.reduce(0) { $0 + $1.size }
        }
        func loraBytes(_ item: PendingWork.Item) -> Int64 { work.loras(of: item).reduce(0) { $0 + work.assets[Int($1)].sizeBytes } }
        var optimized: [PendingWork.Item] = []
        optimized.reserveCapacity(work.items.count)
        for checkpoint in checkpoints {
            let related = work.items.filter { $0.checkpoint == checkpoint }
            optimized += related.filter { $0.loraCount == 0 }
            optimized += related.filter { $0.loraCount > 0 }.sorted { loraBytes($0) < loraBytes($1) }
        }
        return optimized.count
    }
}
