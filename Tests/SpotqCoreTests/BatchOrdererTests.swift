import SpotqCore
import Testing

/// A small deterministic generator, so random cases are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("planner: download and generation order")
struct BatchOrdererTests {
    let gpu = GPUProfile()

    func simulate(_ graph: BatchGraph, _ download: [Int32], _ generation: [Int32]) -> Timeline {
        TimelineSimulator.simulate(graph, downloadOrder: download, generationOrder: generation, bytesPerSecond: gpu.bytesPerSecond, secondsPerImage: gpu.secondsPerImage)
    }

    func seedTimeline(_ graph: BatchGraph) -> Timeline {
        let seed = BatchOrderer.seedOrder(graph)
        return simulate(graph, seed.download, seed.generation)
    }

    /// Case 1 of the README: a big checkpoint with one image sorts first in the seed's
    /// order (its LoRA total is 0), so the GPU makes one image and then waits for the
    /// checkpoint with two thousand.
    @Test func aCheckpointWithOneImage_isNotDownloadedBeforeOneWithThousands() {
        let graph = BatchGraph(
            assetSizes: [7_000_000_000, 6_900_000_000, 150_000_000], checkpoints: [0, 1],
            items: [[0]] + Array(repeating: [1, 2], count: 2_000))
        let ours = BatchOrderer.order(graph, gpu: gpu)
        let seed = seedTimeline(graph)
        print("case 1: seed idle \(seed.gpuIdleSeconds) s, first image \(seed.timeToFirstImage) s; ours (\(ours.strategy)) idle \(ours.timeline.gpuIdleSeconds) s, first image \(ours.timeline.timeToFirstImage) s")
        #expect(ours.timeline.gpuIdleSeconds < seed.gpuIdleSeconds - 20)
        #expect(ours.downloadOrder.first == 1)
    }

    /// Case 2: the seed sorts checkpoints by the total size of their LoRAs, not by what
    /// they unlock: a 7 GB checkpoint whose three images share one small LoRA goes before
    /// a 2 GB checkpoint with 500 LoRA-free images, so the first image waits for 7 GB.
    @Test func aSmallCheckpointWithManyReadyImages_startsTheGPUFirst() {
        // 0 = ckpt A (7 GB) + 1 = its LoRA (0.1 GB), 3 items; 2 = ckpt B (2 GB), 500 LoRA-free
        // items and one with 3 = a 1 GB LoRA.
        var items: [[Int32]] = Array(repeating: [0, 1], count: 3)
        items += Array(repeating: [2], count: 500)
        items.append([2, 3])
        let graph = BatchGraph(assetSizes: [7_000_000_000, 100_000_000, 2_000_000_000, 1_000_000_000], checkpoints: [0, 2], items: items)
        let ours = BatchOrderer.order(graph, gpu: gpu)
        let seed = seedTimeline(graph)
        print("case 2: seed idle \(seed.gpuIdleSeconds) s, first image \(seed.timeToFirstImage) s; ours (\(ours.strategy)) idle \(ours.timeline.gpuIdleSeconds) s, first image \(ours.timeline.timeToFirstImage) s")
        #expect(ours.timeline.gpuIdleSeconds < seed.gpuIdleSeconds - 20)
        #expect(ours.timeline.timeToFirstImage < seed.timeToFirstImage - 20)
    }

    @Test func generationOrder_neverPutsAnItemBehindOneWaitingForALaterDownload() {
        var random = SplitMix64(state: 7)
        for _ in 0..<50 {
            let graph = randomGraph(&random)
            let ordered = BatchOrderer.order(graph, gpu: gpu)
            var position = [Int](repeating: 0, count: graph.assetCount)
            for (index, asset) in ordered.downloadOrder.enumerated() { position[Int(asset)] = index }
            #expect(Set(ordered.downloadOrder).count == graph.assetCount)
            #expect(Set(ordered.generationOrder).count == graph.itemCount)
            let readiness = ordered.generationOrder.map { graph.assets(of: Int($0)).map { position[Int($0)] }.max()! }
            #expect(readiness == readiness.sorted() || ordered.strategy == "seed")
        }
    }

    @Test func onRandomBatches_oursIsNeverWorseThanTheSeedsOnIdleTime() {
        var random = SplitMix64(state: 42)
        var better = 0
        var idleSaved = 0.0
        for _ in 0..<120 {
            let graph = randomGraph(&random)
            let ours = BatchOrderer.order(graph, gpu: gpu).timeline
            let seed = seedTimeline(graph)
            #expect(ours.gpuIdleSeconds <= seed.gpuIdleSeconds + 0.001)
            if ours.gpuIdleSeconds < seed.gpuIdleSeconds - 1 { better += 1 }
            idleSaved += seed.gpuIdleSeconds - ours.gpuIdleSeconds
        }
        print("random batches: ours idles less than the seed's order in \(better) of 120, saving \(Int(idleSaved / 120)) s per batch on average")
        #expect(better > 0)
    }

    /// 1–6 checkpoints of 2–7 GB, up to 40 LoRAs of 10–1500 MB, 20–2,000 items with 0–3 LoRAs.
    func randomGraph(_ random: inout SplitMix64) -> BatchGraph {
        let checkpoints = Int.random(in: 1...6, using: &random)
        let loras = Int.random(in: 0...40, using: &random)
        var sizes: [Int64] = (0..<checkpoints).map { _ in Int64.random(in: 2_000_000_000...7_000_000_000, using: &random) }
        sizes += (0..<loras).map { _ in Int64.random(in: 10_000_000...1_500_000_000, using: &random) }
        var items: [[Int32]] = []
        for _ in 0..<Int.random(in: 20...2_000, using: &random) {
            // Skewed: low-numbered checkpoints and LoRAs are popular.
            let checkpoint = Int32(min(checkpoints - 1, Int(Double(checkpoints) * pow(Double.random(in: 0..<1, using: &random), 2))))
            var assets: [Int32] = [checkpoint]
            if loras > 0 {
                for _ in 0..<Int.random(in: 0...3, using: &random) {
                    let lora = Int32(checkpoints + min(loras - 1, Int(Double(loras) * pow(Double.random(in: 0..<1, using: &random), 2))))
                    if !assets.contains(lora) { assets.append(lora) }
                }
            }
            items.append(assets)
        }
        // Keep only assets someone uses, renumbered.
        var used: [Int32: Int32] = [:]
        var usedSizes: [Int64] = []
        var checkpointSet: Set<Int32> = []
        let renumbered = items.map { assets in
            assets.map { asset -> Int32 in
                if let index = used[asset] { return index }
                let index = Int32(usedSizes.count)
                used[asset] = index
                usedSizes.append(sizes[Int(asset)])
                if Int(asset) < checkpoints { checkpointSet.insert(index) }
                return index
            }
        }
        return BatchGraph(assetSizes: usedSizes, checkpoints: checkpointSet, items: renumbered)
    }
}

import Foundation
