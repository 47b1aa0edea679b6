/// Groups pending items into batches by the operator's rules (``PlanningPolicy``):
/// checkpoints by pending demand, one checkpoint per batch where it has enough work, the
/// next checkpoints added while a batch holds less than the minimum work, the payload cap
/// never exceeded, and a checkpoint with more work than a batch should hold split.
public enum BatchFormer {
    /// One batch's items (global indices, priority order) and assets (global indices).
    public struct FormedBatch: Sendable, Equatable {
        public var checkpoints: [Int32]
        public var items: [Int32]
        public var assets: [Int32]
        public var payloadBytes: Int64
    }

    /// An item no batch can take, and why.
    public struct Unplannable: Sendable, Equatable {
        public var item: Int32
        public var reason: String
    }

    /// A checkpoint's share of work that fits one batch on its own.
    struct Unit {
        var checkpoint: Int32
        var items: [Int32]
        var assets: Set<Int32>
        var bytes: Int64
    }

    public static func form(_ work: PendingWork, policy: PlanningPolicy, gpu: GPUProfile) -> (batches: [FormedBatch], unplannable: [Unplannable]) {
        var unplannable: [Unplannable] = []
        var units: [Unit] = []
        for group in checkpointGroups(work) {
            units += split(group, work: work, policy: policy, gpu: gpu, unplannable: &unplannable)
        }
        // Most work first: big units become batches of their own; small ones absorb others.
        units.sort { $0.items.count != $1.items.count ? $0.items.count > $1.items.count : $0.checkpoint < $1.checkpoint }
        let minimumItems = Int((policy.minimumBatchHours * gpu.imagesPerHour).rounded(.up))
        let maximumItems = maxItemsPerBatch(policy: policy, gpu: gpu)
        var used = [Bool](repeating: false, count: units.count)
        var batches: [FormedBatch] = []
        for index in units.indices where !used[index] {
            used[index] = true
            var batch = units[index]
            var checkpoints = [batch.checkpoint]
            var next = index + 1
            while batch.items.count < minimumItems && next < units.count {
                defer { next += 1 }
                guard !used[next] else { continue }
                let candidate = units[next]
                let extra = candidate.assets.subtracting(batch.assets).reduce(Int64(0)) { $0 + work.assets[Int($1)].sizeBytes }
                guard batch.bytes + extra <= policy.payloadCapBytes, batch.items.count + candidate.items.count <= maximumItems else { continue }
                used[next] = true
                batch.items += candidate.items
                batch.assets.formUnion(candidate.assets)
                batch.bytes += extra
                if !checkpoints.contains(candidate.checkpoint) { checkpoints.append(candidate.checkpoint) }
            }
            batches.append(FormedBatch(
                checkpoints: checkpoints, items: batch.items,
                assets: batch.assets.sorted(), payloadBytes: batch.bytes))
        }
        return (batches, unplannable)
    }

    static func maxItemsPerBatch(policy: PlanningPolicy, gpu: GPUProfile) -> Int {
        max(1, Int(policy.maximumBatchHours * gpu.imagesPerHour))
    }

    /// Items grouped by checkpoint, each group in priority order (higher priority, then
    /// older, then lower id), groups by demand (most items first).
    static func checkpointGroups(_ work: PendingWork) -> [[Int32]] {
        var counts = [Int](repeating: 0, count: work.assets.count + 1)
        for item in work.items { counts[Int(item.checkpoint) + 1] += 1 }
        for index in 0..<work.assets.count { counts[index + 1] += counts[index] }
        var fill = counts
        var bucketed = [Int32](repeating: 0, count: work.items.count)
        for (index, item) in work.items.enumerated() {
            bucketed[fill[Int(item.checkpoint)]] = Int32(index)
            fill[Int(item.checkpoint)] += 1
        }
        var groups: [[Int32]] = []
        for asset in 0..<work.assets.count where counts[asset + 1] > counts[asset] {
            var group = Array(bucketed[counts[asset] ..< counts[asset + 1]])
            group.sort { a, b in
                let (x, y) = (work.items[Int(a)], work.items[Int(b)])
                if x.priority != y.priority { return x.priority > y.priority }
                if x.createdAt != y.createdAt { return x.createdAt < y.createdAt }
                return x.id < y.id
            }
            groups.append(group)
        }
        groups.sort { $0.count != $1.count ? $0.count > $1.count : work.items[Int($0[0])].checkpoint < work.items[Int($1[0])].checkpoint }
        return groups
    }

    /// Splits one checkpoint's items into units within the payload cap and the most work a
    /// batch holds. LoRAs are taken by popularity (most items first, smaller first among
    /// equals) while they fit; an item goes into the unit when all its LoRAs did. What is
    /// left makes the next unit.
    static func split(_ group: [Int32], work: PendingWork, policy: PlanningPolicy, gpu: GPUProfile, unplannable: inout [Unplannable]) -> [Unit] {
        let checkpoint = work.items[Int(group[0])].checkpoint
        let checkpointBytes = work.assets[Int(checkpoint)].sizeBytes
        let capacity = policy.payloadCapBytes - checkpointBytes
        guard capacity >= 0 else {
            let name = work.assets[Int(checkpoint)].filename
            unplannable += group.map { Unplannable(item: $0, reason: "checkpoint \(name) alone (\(ByteCount.format(checkpointBytes))) exceeds the payload cap of \(ByteCount.format(policy.payloadCapBytes))") }
            return []
        }
        let maximumItems = maxItemsPerBatch(policy: policy, gpu: gpu)
        var units: [Unit] = []
        var remaining = group
        var popularity = [Int32](repeating: 0, count: work.assets.count)
        var included = [Bool](repeating: false, count: work.assets.count)
        while !remaining.isEmpty {
            var touched: [Int32] = []
            for index in remaining {
                for lora in work.loras(of: work.items[Int(index)]) {
                    if popularity[Int(lora)] == 0 { touched.append(lora) }
                    popularity[Int(lora)] += 1
                }
            }
            touched.sort { a, b in
                popularity[Int(a)] != popularity[Int(b)] ? popularity[Int(a)] > popularity[Int(b)]
                    : work.assets[Int(a)].sizeBytes != work.assets[Int(b)].sizeBytes ? work.assets[Int(a)].sizeBytes < work.assets[Int(b)].sizeBytes : a < b
            }
            var room = capacity
            for lora in touched where work.assets[Int(lora)].sizeBytes <= room {
                included[Int(lora)] = true
                room -= work.assets[Int(lora)].sizeBytes
            }
            var taken: [Int32] = []
            var left: [Int32] = []
            for index in remaining {
                let fits = taken.count < maximumItems && work.loras(of: work.items[Int(index)]).allSatisfy { included[Int($0)] }
                if fits { taken.append(index) } else { left.append(index) }
            }
            if taken.isEmpty {
                // The most popular LoRAs filled the room without completing any item: fall
                // back to the first item's own LoRAs, or give up on items that cannot fit.
                let first = work.items[Int(left[0])]
                let bytes = work.loras(of: first).reduce(Int64(0)) { $0 + work.assets[Int($1)].sizeBytes }
                for lora in touched { included[Int(lora)] = false }
                if bytes > capacity {
                    unplannable.append(Unplannable(item: left[0], reason: "its checkpoint and LoRAs (\(ByteCount.format(bytes + checkpointBytes))) exceed the payload cap of \(ByteCount.format(policy.payloadCapBytes))"))
                    left.removeFirst()
                } else {
                    for lora in work.loras(of: first) { included[Int(lora)] = true }
                    taken = [left.removeFirst()]
                    var stillLeft: [Int32] = []
                    for index in left {
                        if taken.count < maximumItems && work.loras(of: work.items[Int(index)]).allSatisfy({ included[Int($0)] }) { taken.append(index) } else { stillLeft.append(index) }
                    }
                    left = stillLeft
                }
            }
            if !taken.isEmpty {
                var assets: Set<Int32> = [checkpoint]
                var bytes = checkpointBytes
                for index in taken {
                    for lora in work.loras(of: work.items[Int(index)]) where assets.insert(lora).inserted {
                        bytes += work.assets[Int(lora)].sizeBytes
                    }
                }
                units.append(Unit(checkpoint: checkpoint, items: taken, assets: assets, bytes: bytes))
            }
            for lora in touched {
                popularity[Int(lora)] = 0
                included[Int(lora)] = false
            }
            remaining = left
        }
        return units
    }
}
