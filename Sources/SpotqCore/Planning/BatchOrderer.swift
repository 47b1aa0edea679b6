/// Chooses a batch's download order (and from it the generation order) so the GPU starts
/// as soon as possible and waits as little as possible.
///
/// Several candidate orders are simulated with ``TimelineSimulator`` and the best one is
/// kept (least GPU idle time, then earliest first image, then earliest finish):
/// - `unlocked-per-byte`: repeatedly download the asset that makes the most images
///   ready per byte (a checkpoint with many LoRA-free images beats a tiny LoRA for one);
/// - `johnson`: checkpoints as jobs of a two-stage flow shop (download, then generate)
///   ordered by Johnson's rule, which minimises the finish time of that model; inside each
///   checkpoint, `unlocked-per-byte`;
/// - `seed`: the seed's order (checkpoints by the total size of their LoRAs, LoRA-free
///   images first, then by LoRA size), so the result is never worse than the seed's.
public enum BatchOrderer {
    public struct Ordered: Sendable {
        public var downloadOrder: [Int32]
        public var generationOrder: [Int32]
        public var strategy: String
        public var timeline: Timeline
    }

    public static func order(_ graph: BatchGraph, gpu: GPUProfile) -> Ordered {
        let candidates: [(String, [Int32], [Int32]?)] = [
            ("unlocked-per-byte", unlockedPerByte(graph), nil),
            ("johnson", johnson(graph, gpu: gpu), nil),
            { let seed = seedOrder(graph); return ("seed", seed.download, seed.generation) }(),
        ]
        var best: Ordered?
        for (name, download, generation) in candidates {
            let generation = generation ?? graph.generationOrder(for: download)
            let timeline = TimelineSimulator.simulate(
                graph, downloadOrder: download, generationOrder: generation,
                bytesPerSecond: gpu.bytesPerSecond, secondsPerImage: gpu.secondsPerImage)
            let candidate = Ordered(downloadOrder: download, generationOrder: generation, strategy: name, timeline: timeline)
            if best == nil || isBetter(timeline, than: best!.timeline) { best = candidate }
        }
        return best!
    }

    /// Least idle, then first image, then finish; differences under a millisecond are ties.
    static func isBetter(_ a: Timeline, than b: Timeline) -> Bool {
        func differs(_ x: Double, _ y: Double) -> Bool { abs(x - y) > 0.001 }
        if differs(a.gpuIdleSeconds, b.gpuIdleSeconds) { return a.gpuIdleSeconds < b.gpuIdleSeconds }
        if differs(a.timeToFirstImage, b.timeToFirstImage) { return a.timeToFirstImage < b.timeToFirstImage }
        return a.makespan < b.makespan - 0.001
    }

    // MARK: unlocked-per-byte

    /// Greedy: next, the asset that completes the most items per byte. When no single
    /// asset completes any item, the item closest to ready (fewest missing bytes) gets its
    /// checkpoint, else its smallest missing LoRA.
    public static func unlockedPerByte(_ graph: BatchGraph, restrictedTo allowed: [Int32]? = nil) -> [Int32] {
        let (rowStart, rows) = graph.itemsByAsset()
        var inScope = [Bool](repeating: allowed == nil, count: graph.assetCount)
        for asset in allowed ?? [] { inScope[Int(asset)] = true }
        var missing = [Int32](repeating: 0, count: graph.itemCount)
        var missingBytes = [Int64](repeating: 0, count: graph.itemCount)
        var completes = [Int](repeating: 0, count: graph.assetCount)
        var downloaded = [Bool](repeating: false, count: graph.assetCount)
        var relevant = [Bool](repeating: true, count: graph.itemCount)
        for item in 0..<graph.itemCount {
            let assets = graph.assets(of: item)
            // Items needing an asset outside the scope are not this order's business.
            if !assets.allSatisfy({ inScope[Int($0)] }) { relevant[item] = false; continue }
            missing[item] = Int32(assets.count)
            missingBytes[item] = assets.reduce(0) { $0 + graph.assetSizes[Int($1)] }
            if assets.count == 1 { completes[Int(assets.first!)] += 1 }
        }
        var order: [Int32] = []
        let scope = (0..<graph.assetCount).filter { inScope[$0] }
        order.reserveCapacity(scope.count)
        var remaining = scope.count
        while remaining > 0 {
            var best = -1
            for asset in scope where !downloaded[asset] {
                guard completes[asset] > 0 else { continue }
                if best < 0 { best = asset; continue }
                // completes[a] / size[a] > completes[b] / size[b], without division.
                let lhs = Double(completes[asset]) * Double(graph.assetSizes[best])
                let rhs = Double(completes[best]) * Double(graph.assetSizes[asset])
                if lhs > rhs || (lhs == rhs && graph.assetSizes[asset] < graph.assetSizes[best]) { best = asset }
            }
            if best < 0 { best = closestItemsNextAsset(graph, relevant: relevant, missing: missing, missingBytes: missingBytes, downloaded: downloaded, scope: scope) }
            downloaded[best] = true
            order.append(Int32(best))
            remaining -= 1
            for row in Int(rowStart[best]) ..< Int(rowStart[best + 1]) {
                let item = Int(rows[row])
                guard relevant[item] else { continue }
                missing[item] -= 1
                missingBytes[item] -= graph.assetSizes[best]
                if missing[item] == 1, let last = graph.assets(of: item).first(where: { !downloaded[Int($0)] }) {
                    completes[Int(last)] += 1
                } else if missing[item] == 0 {
                    completes[best] -= 1
                }
            }
        }
        return order
    }

    static func closestItemsNextAsset(
        _ graph: BatchGraph, relevant: [Bool], missing: [Int32], missingBytes: [Int64], downloaded: [Bool], scope: [Int]
    ) -> Int {
        var closest = -1
        for item in 0..<graph.itemCount where relevant[item] && missing[item] > 0 {
            if closest < 0 || missingBytes[item] < missingBytes[closest] { closest = item }
        }
        guard closest >= 0 else {
            // Assets no relevant item needs: smallest first.
            return scope.filter { !downloaded[$0] }.min { graph.assetSizes[$0] < graph.assetSizes[$1] }!
        }
        let pending = graph.assets(of: closest).filter { !downloaded[Int($0)] }
        if let checkpoint = pending.first(where: { graph.assetIsCheckpoint[Int($0)] }) { return Int(checkpoint) }
        return Int(pending.min { graph.assetSizes[Int($0)] < graph.assetSizes[Int($1)] }!)
    }

    // MARK: johnson

    /// Checkpoint groups ordered by Johnson's rule (download time a, GPU time b): groups with
    /// a < b first by increasing a, then the rest by decreasing b. Each group's assets are
    /// contiguous, in `unlockedPerByte` order within the group.
    public static func johnson(_ graph: BatchGraph, gpu: GPUProfile) -> [Int32] {
        var groupOf: [Int32: Int] = [:]
        var groups: [(checkpoint: Int32, assets: [Int32], bytes: Int64, items: Int)] = []
        var seen = [Bool](repeating: false, count: graph.assetCount)
        for item in 0..<graph.itemCount {
            let assets = graph.assets(of: item)
            let checkpoint = assets.first!
            let group: Int
            if let existing = groupOf[checkpoint] {
                group = existing
            } else {
                group = groups.count
                groupOf[checkpoint] = group
                groups.append((checkpoint, [], 0, 0))
            }
            groups[group].items += 1
            for asset in assets where !seen[Int(asset)] {
                seen[Int(asset)] = true
                groups[group].assets.append(asset)
                groups[group].bytes += graph.assetSizes[Int(asset)]
            }
        }
        let download = { (group: (checkpoint: Int32, assets: [Int32], bytes: Int64, items: Int)) in Double(group.bytes) / gpu.bytesPerSecond }
        let generate = { (group: (checkpoint: Int32, assets: [Int32], bytes: Int64, items: Int)) in Double(group.items) * gpu.secondsPerImage }
        let first = groups.filter { download($0) < generate($0) }.sorted { download($0) < download($1) }
        let second = groups.filter { download($0) >= generate($0) }.sorted { generate($0) > generate($1) }
        var order: [Int32] = []
        for group in first + second {
            order += unlockedPerByte(graph, restrictedTo: group.assets)
        }
        return order
    }

    // MARK: seed

    /// The seed's `optimizeQueue`: checkpoints by the total size of the LoRAs their items
    /// use (smallest first); per checkpoint, LoRA-free items first, then items by the total
    /// size of their LoRAs. Assets download in the order that queue first needs them.
    public static func seedOrder(_ graph: BatchGraph) -> (download: [Int32], generation: [Int32]) {
        var checkpoints: [Int32] = []
        var loraTotal: [Int32: Int64] = [:]
        var loraSeen: [Int32: Set<Int32>] = [:]
        var itemsOf: [Int32: [Int32]] = [:]
        for item in 0..<graph.itemCount {
            let assets = graph.assets(of: item)
            let checkpoint = assets.first!
            if itemsOf[checkpoint] == nil { checkpoints.append(checkpoint) }
            itemsOf[checkpoint, default: []].append(Int32(item))
            for lora in assets.dropFirst() where loraSeen[checkpoint, default: []].insert(lora).inserted {
                loraTotal[checkpoint, default: 0] += graph.assetSizes[Int(lora)]
            }
        }
        // A stable sort, like JavaScript's Array.prototype.sort.
        let sortedCheckpoints = checkpoints.enumerated().sorted {
            let (a, b) = (loraTotal[$0.element] ?? 0, loraTotal[$1.element] ?? 0)
            return a != b ? a < b : $0.offset < $1.offset
        }.map(\.element)
        func loraBytes(_ item: Int32) -> Int64 { graph.assets(of: Int(item)).dropFirst().reduce(0) { $0 + graph.assetSizes[Int($1)] } }
        var generation: [Int32] = []
        for checkpoint in sortedCheckpoints {
            let related = itemsOf[checkpoint]!
            generation += related.filter { graph.assets(of: Int($0)).count == 1 }
            generation += related.filter { graph.assets(of: Int($0)).count > 1 }.enumerated().sorted {
                let (a, b) = (loraBytes($0.element), loraBytes($1.element))
                return a != b ? a < b : $0.offset < $1.offset
            }.map(\.element)
        }
        var download: [Int32] = []
        var queued = [Bool](repeating: false, count: graph.assetCount)
        for item in generation {
            for asset in graph.assets(of: Int(item)) where !queued[Int(asset)] {
                queued[Int(asset)] = true
                download.append(asset)
            }
        }
        return (download, generation)
    }
}
