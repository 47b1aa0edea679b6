/// One batch's items and assets with local numbering (assets 0..<assetCount in order of
/// first use, items 0..<itemCount in priority order), the form the orderers and the
/// timeline simulator work on.
public struct BatchGraph: Sendable {
    /// Global asset index (into `PendingWork.assets`) of each local asset.
    public var globalAssets: [Int32] = []
    public var assetSizes: [Int64] = []
    public var assetIsCheckpoint: [Bool] = []
    /// Global item index of each local item, in priority order.
    public var globalItems: [Int32] = []
    /// Assets of local item i: `itemAssets[itemAssetStart[i] ..< itemAssetStart[i + 1]]`,
    /// the checkpoint first, then the LoRAs.
    public var itemAssetStart: [Int32] = [0]
    public var itemAssets: [Int32] = []

    public var assetCount: Int { assetSizes.count }
    public var itemCount: Int { globalItems.count }

    public init() {}

    /// Builds the graph of `items` (global indices, already in priority order).
    public init(work: PendingWork, items: [Int32]) {
        // Global → local asset numbers in a plain array: a dictionary's hashing was a
        // good part of planning time.
        var local = [Int32](repeating: -1, count: work.assets.count)
        globalItems = items
        itemAssetStart.reserveCapacity(items.count + 1)
        itemAssets.reserveCapacity(items.count * 2)
        let pool = work.loraPool
        let sizes = work.assetSizes
        let isCheckpoint = work.assetIsCheckpoint
        for index in items {
            let item = work.items[Int(index)]
            // The database keeps each LoRA once per item.
            for k in -1 ..< Int(item.loraCount) {
                let global = k < 0 ? item.checkpoint : pool[Int(item.loraStart) + k]
                var asset = local[Int(global)]
                if asset < 0 {
                    asset = Int32(assetSizes.count)
                    local[Int(global)] = asset
                    globalAssets.append(global)
                    assetSizes.append(sizes[Int(global)])
                    assetIsCheckpoint.append(isCheckpoint[Int(global)])
                }
                itemAssets.append(asset)
            }
            itemAssetStart.append(Int32(itemAssets.count))
        }
    }

    /// Builds a graph directly (tests and examples): sizes per asset, assets per item.
    public init(assetSizes: [Int64], checkpoints: Set<Int32>, items: [[Int32]]) {
        self.assetSizes = assetSizes
        assetIsCheckpoint = assetSizes.indices.map { checkpoints.contains(Int32($0)) }
        globalAssets = assetSizes.indices.map(Int32.init)
        globalItems = items.indices.map(Int32.init)
        for assets in items {
            itemAssets.append(contentsOf: assets)
            itemAssetStart.append(Int32(itemAssets.count))
        }
    }

    public func assets(of item: Int) -> ArraySlice<Int32> {
        itemAssets[Int(itemAssetStart[item]) ..< Int(itemAssetStart[item + 1])]
    }

    public var payloadBytes: Int64 { assetSizes.reduce(0, +) }

    /// For each asset, the items that need it (compressed rows).
    func itemsByAsset() -> (start: [Int32], items: [Int32]) {
        var counts = [Int32](repeating: 0, count: assetCount + 1)
        for asset in itemAssets { counts[Int(asset) + 1] += 1 }
        for index in 0..<assetCount { counts[index + 1] += counts[index] }
        var fill = counts
        var rows = [Int32](repeating: 0, count: itemAssets.count)
        for item in 0..<itemCount {
            for asset in assets(of: item) {
                rows[Int(fill[Int(asset)])] = Int32(item)
                fill[Int(asset)] += 1
            }
        }
        return (counts, rows)
    }

    /// The generation order that a download order implies: items by the moment their last
    /// asset lands, keeping priority order among items ready at the same moment. No item
    /// waits behind one that needs a later download.
    public func generationOrder(for downloadOrder: [Int32]) -> [Int32] {
        var position = [Int32](repeating: 0, count: assetCount)
        for (index, asset) in downloadOrder.enumerated() { position[Int(asset)] = Int32(index) }
        var readyAt = [Int32](repeating: 0, count: itemCount)
        var counts = [Int32](repeating: 0, count: assetCount + 1)
        for item in 0..<itemCount {
            let ready = assets(of: item).reduce(Int32(0)) { max($0, position[Int($1)]) }
            readyAt[item] = ready
            counts[Int(ready) + 1] += 1
        }
        for index in 0..<assetCount { counts[index + 1] += counts[index] }
        var order = [Int32](repeating: 0, count: itemCount)
        for item in 0..<itemCount {
            order[Int(counts[Int(readyAt[item])])] = Int32(item)
            counts[Int(readyAt[item])] += 1
        }
        return order
    }
}
