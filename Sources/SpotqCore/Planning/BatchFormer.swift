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
    struct Unit: Sendable {
        var checkpoint: Int32
        var items: [Int32]
        /// Sorted, without duplicates; the checkpoint included.
        var assets: [Int32]
        var bytes: Int64
    }

    /// The pending work as plain arrays: the loops below touch every item several times,
    /// and slices and struct copies per access cost more than the work itself.
    struct Flat: Sendable {
        let sizes: [Int64]
        let checkpointOf: [Int32]
        let loraStart: [Int]
        let loraEnd: [Int]
        let pool: [Int32]

        init(_ work: PendingWork) {
            sizes = work.assetSizes
            checkpointOf = work.items.map(\.checkpoint)
            loraStart = work.items.map { Int($0.loraStart) }
            loraEnd = work.items.map { Int($0.loraStart + $0.loraCount) }
            pool = work.loraPool
        }
    }

    public static func form(_ work: PendingWork, policy: PlanningPolicy, gpu: GPUProfile) -> (batches: [FormedBatch], unplannable: [Unplannable]) {
        let flat = Flat(work)
        let groups = checkpointGroups(work)
        let splits = Parallel.map(groups.count) { index in
            var unplannable: [Unplannable] = []
            let units = split(groups[index], work: work, flat: flat, policy: policy, gpu: gpu, unplannable: &unplannable)
            return (units, unplannable)
        }
        let units = splits.flatMap(\.0)
        let unplannable = splits.flatMap(\.1)
        return (combine(units, flat: flat, policy: policy, gpu: gpu), unplannable)
    }

    static func maxItemsPerBatch(policy: PlanningPolicy, gpu: GPUProfile) -> Int {
        max(1, Int(policy.maximumBatchHours * gpu.imagesPerHour))
    }

    /// Most work first: big units become batches of their own; a unit with less than the
    /// minimum work takes in the next units that fit the payload cap.
    static func combine(_ units: [Unit], flat: Flat, policy: PlanningPolicy, gpu: GPUProfile) -> [FormedBatch] {
        let units = units.sorted { $0.items.count != $1.items.count ? $0.items.count > $1.items.count : $0.checkpoint < $1.checkpoint }
        let minimumItems = Int((policy.minimumBatchHours * gpu.imagesPerHour).rounded(.up))
        let maximumItems = maxItemsPerBatch(policy: policy, gpu: gpu)
        var used = [Bool](repeating: false, count: units.count)
        var inBatch = [Bool](repeating: false, count: flat.sizes.count)
        var batches: [FormedBatch] = []
        for index in units.indices where !used[index] {
            used[index] = true
            var items = units[index].items
            var assets = units[index].assets
            var bytes = units[index].bytes
            var checkpoints = [units[index].checkpoint]
            for asset in assets { inBatch[Int(asset)] = true }
            var next = index + 1
            while items.count < minimumItems && next < units.count {
                defer { next += 1 }
                guard !used[next] else { continue }
                let candidate = units[next]
                var extra: Int64 = 0
                for asset in candidate.assets where !inBatch[Int(asset)] { extra += flat.sizes[Int(asset)] }
                guard bytes + extra <= policy.payloadCapBytes, items.count + candidate.items.count <= maximumItems else { continue }
                used[next] = true
                items += candidate.items
                for asset in candidate.assets where !inBatch[Int(asset)] {
                    inBatch[Int(asset)] = true
                    assets.append(asset)
                }
                bytes += extra
                if !checkpoints.contains(candidate.checkpoint) { checkpoints.append(candidate.checkpoint) }
            }
            for asset in assets { inBatch[Int(asset)] = false }
            batches.append(FormedBatch(checkpoints: checkpoints, items: items, assets: assets.sorted(), payloadBytes: bytes))
        }
        return batches
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
        // One contiguous sort key per item: priority (higher first) and age (older first)
        // packed into one Int64, then the id.
        struct Key: Comparable {
            var rank: Int64
            var id: Int64
            var index: Int32
            static func < (a: Key, b: Key) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.id < b.id }
        }
        var groups: [[Int32]] = []
        var keys: [Key] = []
        for asset in 0..<work.assets.count where counts[asset + 1] > counts[asset] {
            keys.removeAll(keepingCapacity: true)
            for index in bucketed[counts[asset] ..< counts[asset + 1]] {
                let item = work.items[Int(index)]
                keys.append(Key(rank: Int64(1_000_000 - Int(item.priority)) << 40 | (item.createdAt & 0xFF_FFFF_FFFF), id: item.id, index: index))
            }
            keys.sort()
            groups.append(keys.map(\.index))
        }
        groups.sort { $0.count != $1.count ? $0.count > $1.count : work.items[Int($0[0])].checkpoint < work.items[Int($1[0])].checkpoint }
        return groups
    }

    /// Splits one checkpoint's items into units within the payload cap and the most work a
    /// batch holds. LoRAs are taken by popularity (most items first, smaller first among
    /// equals) while they fit, and the items all of whose LoRAs made it are taken; then the
    /// unit keeps only the LoRAs those items use and fills the room this frees with the
    /// other items, in priority order, whose extra LoRAs still fit. What is left makes the
    /// next unit.
    static func split(_ group: [Int32], work: PendingWork, flat: Flat, policy: PlanningPolicy, gpu: GPUProfile, unplannable: inout [Unplannable]) -> [Unit] {
        let checkpoint = flat.checkpointOf[Int(group[0])]
        let checkpointBytes = flat.sizes[Int(checkpoint)]
        let capacity = policy.payloadCapBytes - checkpointBytes
        guard capacity >= 0 else {
            let name = work.assets[Int(checkpoint)].filename
            unplannable += group.map { Unplannable(item: $0, reason: "checkpoint \(name) alone (\(ByteCount.format(checkpointBytes))) exceeds the payload cap of \(ByteCount.format(policy.payloadCapBytes))") }
            return []
        }
        let maximumItems = maxItemsPerBatch(policy: policy, gpu: gpu)
        let sizes = flat.sizes
        // The group's LoRA lists copied next to each other, in group order: the passes below
        // then read memory in sequence instead of jumping around a million items (cache misses
        // were most of the time). Indices from here on are positions in `group`.
        var loraStart = [Int](repeating: 0, count: group.count)
        var loraEnd = [Int](repeating: 0, count: group.count)
        var pool: [Int32] = []
        pool.reserveCapacity(group.count * 2)
        for (position, index) in group.enumerated() {
            loraStart[position] = pool.count
            pool.append(contentsOf: flat.pool[flat.loraStart[Int(index)] ..< flat.loraEnd[Int(index)]])
            loraEnd[position] = pool.count
        }
        var units: [Unit] = []
        var remaining = Array(0 ..< Int32(group.count))
        var popularity = [Int32](repeating: 0, count: sizes.count)
        var included = [Bool](repeating: false, count: sizes.count)
        while !remaining.isEmpty {
            var touched: [Int32] = []
            for index in remaining {
                for k in loraStart[Int(index)] ..< loraEnd[Int(index)] {
                    let lora = Int(pool[k])
                    if popularity[lora] == 0 { touched.append(Int32(lora)) }
                    popularity[lora] += 1
                }
            }
            // A copy for the closure: capturing the `var` itself would box it, and every
            // access in the loops above would pay for dynamic exclusivity checks.
            let counts = popularity
            touched.sort { a, b in
                let (a, b) = (Int(a), Int(b))
                if counts[a] != counts[b] { return counts[a] > counts[b] }
                if sizes[a] != sizes[b] { return sizes[a] < sizes[b] }
                return a < b
            }
            var room = capacity
            for lora in touched where sizes[Int(lora)] <= room {
                included[Int(lora)] = true
                room -= sizes[Int(lora)]
            }
            var taken: [Int32] = []
            var left: [Int32] = []
            left.reserveCapacity(remaining.count)
            for index in remaining {
                var fits = taken.count < maximumItems
                if fits {
                    for k in loraStart[Int(index)] ..< loraEnd[Int(index)] where !included[Int(pool[k])] {
                        fits = false
                        break
                    }
                }
                if fits { taken.append(index) } else { left.append(index) }
            }
            // Keep only what the taken items use; the rest of the room goes to others.
            for lora in touched { included[Int(lora)] = false }
            room = capacity
            for index in taken {
                for k in loraStart[Int(index)] ..< loraEnd[Int(index)] where !included[Int(pool[k])] {
                    included[Int(pool[k])] = true
                    room -= sizes[Int(pool[k])]
                }
            }
            if taken.count < maximumItems && room > 0 {
                var stillLeft: [Int32] = []
                stillLeft.reserveCapacity(left.count)
                for index in left {
                    guard taken.count < maximumItems else { stillLeft.append(index); continue }
                    var extra: Int64 = 0
                    for k in loraStart[Int(index)] ..< loraEnd[Int(index)] where !included[Int(pool[k])] { extra += sizes[Int(pool[k])] }
                    if extra <= room {
                        for k in loraStart[Int(index)] ..< loraEnd[Int(index)] { included[Int(pool[k])] = true }
                        room -= extra
                        taken.append(index)
                    } else {
                        stillLeft.append(index)
                    }
                }
                left = stillLeft
            }
            if taken.isEmpty, let first = left.first {
                // Not even one item fits beside its checkpoint: it never will.
                var bytes = checkpointBytes
                for k in loraStart[Int(first)] ..< loraEnd[Int(first)] { bytes += sizes[Int(pool[k])] }
                unplannable.append(Unplannable(item: group[Int(first)], reason: "its checkpoint and LoRAs (\(ByteCount.format(bytes))) exceed the payload cap of \(ByteCount.format(policy.payloadCapBytes))"))
                left.removeFirst()
            }
            if !taken.isEmpty {
                var assets: [Int32] = [checkpoint]
                var bytes = checkpointBytes
                for lora in touched where included[Int(lora)] {
                    assets.append(lora)
                    bytes += sizes[Int(lora)]
                }
                assets.sort()
                units.append(Unit(checkpoint: checkpoint, items: taken.map { group[Int($0)] }, assets: assets, bytes: bytes))
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
