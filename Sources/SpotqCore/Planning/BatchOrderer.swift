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

    public static func order(_ graph: BatchGraph, gpu: GPUProfile, choice: PlanningPolicy.OrderChoice = .best) -> Ordered {
        var candidates: [(String, [Int32], [Int32]?)] = []
        if choice == .best {
            candidates.append(("unlocked-per-byte", unlockedPerByte(graph), nil))
            // With one checkpoint, Johnson's order is the same as the first.
            if graph.assetIsCheckpoint.lazy.filter({ $0 }).count > 1 { candidates.append(("johnson", johnson(graph, gpu: gpu), nil)) }
        }
        let seed = seedOrder(graph)
        candidates.append(("seed", seed.download, seed.generation))
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
    /// checkpoint, else its smallest missing LoRA. Both choices come from heaps with lazy
    /// deletion, so a batch of thousands of items and hundreds of assets orders in about a
    /// millisecond.
    public static func unlockedPerByte(_ graph: BatchGraph, restrictedTo allowed: [Int32]? = nil) -> [Int32] {
        let (rowStart, rows) = graph.itemsByAsset()
        let sizes = graph.assetSizes
        var inScope = [Bool](repeating: allowed == nil, count: graph.assetCount)
        for asset in allowed ?? [] { inScope[Int(asset)] = true }
        var missing = [Int32](repeating: 0, count: graph.itemCount)
        var missingBytes = [Int64](repeating: 0, count: graph.itemCount)
        var completes = [Int](repeating: 0, count: graph.assetCount)
        var downloaded = [Bool](repeating: false, count: graph.assetCount)
        var relevant = [Bool](repeating: true, count: graph.itemCount)

        struct AssetEntry { var completes: Int; var size: Int64; var asset: Int32 }
        // completes/size higher first, without division; then smaller; then lower index.
        var best = BinaryHeap<AssetEntry> { a, b in
            let lhs = Double(a.completes) * Double(b.size)
            let rhs = Double(b.completes) * Double(a.size)
            if lhs != rhs { return lhs > rhs }
            if a.size != b.size { return a.size < b.size }
            return a.asset < b.asset
        }
        struct ItemEntry { var bytes: Int64; var item: Int32 }
        var closest = BinaryHeap<ItemEntry> { a, b in a.bytes != b.bytes ? a.bytes < b.bytes : a.item < b.item }

        for item in 0..<graph.itemCount {
            let assets = graph.assets(of: item)
            // Items needing an asset outside the scope are not this order's business.
            if !assets.allSatisfy({ inScope[Int($0)] }) { relevant[item] = false; continue }
            missing[item] = Int32(assets.count)
            missingBytes[item] = assets.reduce(0) { $0 + sizes[Int($1)] }
            if assets.count == 1 { completes[Int(assets.first!)] += 1 }
            closest.push(ItemEntry(bytes: missingBytes[item], item: Int32(item)))
        }
        var scopeCount = 0
        for asset in 0..<graph.assetCount where inScope[asset] {
            scopeCount += 1
            if completes[asset] > 0 { best.push(AssetEntry(completes: completes[asset], size: sizes[asset], asset: Int32(asset))) }
        }
        var order: [Int32] = []
        order.reserveCapacity(scopeCount)
        while order.count < scopeCount {
            var next = -1
            while let top = best.top {
                best.pop()
                if !downloaded[Int(top.asset)] && top.completes == completes[Int(top.asset)] { next = Int(top.asset); break }
            }
            if next < 0 {
                while let top = closest.top {
                    let item = Int(top.item)
                    if missing[item] > 0 && top.bytes == missingBytes[item] { break }
                    closest.pop()
                }
                if let top = closest.top {
                    let pending = graph.assets(of: Int(top.item)).filter { !downloaded[Int($0)] }
                    next = Int(pending.first(where: { graph.assetIsCheckpoint[Int($0)] }) ?? pending.min { sizes[Int($0)] < sizes[Int($1)] }!)
                } else {
                    // Assets no relevant item needs: smallest first.
                    next = (0..<graph.assetCount).filter { inScope[$0] && !downloaded[$0] }.min { sizes[$0] < sizes[$1] }!
                }
            }
            downloaded[next] = true
            order.append(Int32(next))
            for row in Int(rowStart[next]) ..< Int(rowStart[next + 1]) {
                let item = Int(rows[row])
                guard relevant[item] else { continue }
                missing[item] -= 1
                missingBytes[item] -= sizes[next]
                if missing[item] > 0 { closest.push(ItemEntry(bytes: missingBytes[item], item: Int32(item))) }
                if missing[item] == 1, let last = graph.assets(of: item).first(where: { !downloaded[Int($0)] }) {
                    completes[Int(last)] += 1
                    best.push(AssetEntry(completes: completes[Int(last)], size: sizes[Int(last)], asset: last))
                }
            }
        }
        return order
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
        let sizes = graph.assetSizes
        var checkpoints: [Int32] = []
        var loraTotal = [Int64](repeating: 0, count: graph.assetCount)
        var itemsOf = [[Int32]](repeating: [], count: graph.assetCount)
        // (checkpoint, LoRA) pairs already counted, as a set of packed keys.
        var counted = Set<Int64>()
        var loraBytes = [Int64](repeating: 0, count: graph.itemCount)
        for item in 0..<graph.itemCount {
            let assets = graph.assets(of: item)
            let checkpoint = assets.first!
            if itemsOf[Int(checkpoint)].isEmpty { checkpoints.append(checkpoint) }
            itemsOf[Int(checkpoint)].append(Int32(item))
            for lora in assets.dropFirst() {
                loraBytes[item] += sizes[Int(lora)]
                if counted.insert(Int64(checkpoint) << 32 | Int64(lora)).inserted { loraTotal[Int(checkpoint)] += sizes[Int(lora)] }
            }
        }
        // Stable sorts, like JavaScript's Array.prototype.sort: ties keep first-seen order.
        let rank = Dictionary(uniqueKeysWithValues: checkpoints.enumerated().map { ($0.element, $0.offset) })
        let totals = loraTotal
        let sortedCheckpoints = checkpoints.sorted {
            totals[Int($0)] != totals[Int($1)] ? totals[Int($0)] < totals[Int($1)] : rank[$0]! < rank[$1]!
        }
        let bytes = loraBytes
        var generation: [Int32] = []
        generation.reserveCapacity(graph.itemCount)
        for checkpoint in sortedCheckpoints {
            let related = itemsOf[Int(checkpoint)]
            generation += related.filter { bytes[Int($0)] == 0 && graph.assets(of: Int($0)).count == 1 }
            // Item numbers grow with input order, so they break ties as a stable sort would.
            generation += related.filter { graph.assets(of: Int($0)).count > 1 }.sorted {
                bytes[Int($0)] != bytes[Int($1)] ? bytes[Int($0)] < bytes[Int($1)] : $0 < $1
            }
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
