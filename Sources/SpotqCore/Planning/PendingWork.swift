/// The planner's input: pending items and the assets they name, in a compact form (asset
/// indices instead of names, LoRA lists in one shared pool), because a backlog can hold a
/// million items and planning must take well under a second.
public struct PendingWork: Sendable {
    /// A model file, referred to by its index in ``assets``.
    public struct PlanAsset: Sendable, Equatable {
        public var filename: String
        public var kind: AssetKind
        public var sizeBytes: Int64

        public init(filename: String, kind: AssetKind, sizeBytes: Int64) {
            self.filename = filename
            self.kind = kind
            self.sizeBytes = sizeBytes
        }
    }

    /// A pending image.
    public struct Item: Sendable, Equatable {
        public var id: Int64
        /// Index into ``assets`` of its checkpoint.
        public var checkpoint: Int32
        /// Its LoRAs: `loraPool[loraStart ..< loraStart + loraCount]`.
        public var loraStart: Int32
        public var loraCount: Int32
        /// Higher first.
        public var priority: Int32
        /// Seconds since 1970; older first among equal priorities.
        public var createdAt: Int64
    }

    public private(set) var assets: [PlanAsset] = []
    public private(set) var items: [Item] = []
    public private(set) var loraPool: [Int32] = []
    /// ``assets``' sizes and kinds as plain arrays, for the planner's inner loops.
    public private(set) var assetSizes: [Int64] = []
    public private(set) var assetIsCheckpoint: [Bool] = []
    private var assetIndex: [String: Int32] = [:]

    public init() {}

    /// The index of `filename`, adding it on first use.
    public mutating func asset(_ filename: String, kind: AssetKind, sizeBytes: Int64) -> Int32 {
        if let index = assetIndex[filename] { return index }
        let index = Int32(assets.count)
        assets.append(PlanAsset(filename: filename, kind: kind, sizeBytes: sizeBytes))
        assetSizes.append(sizeBytes)
        assetIsCheckpoint.append(kind == .checkpoint)
        assetIndex[filename] = index
        return index
    }

    public func assetIndex(of filename: String) -> Int32? { assetIndex[filename] }

    public mutating func addItem(id: Int64, checkpoint: Int32, loras: some Collection<Int32>, priority: Int32 = 0, createdAt: Int64 = 0) {
        items.append(Item(
            id: id, checkpoint: checkpoint, loraStart: Int32(loraPool.count), loraCount: Int32(loras.count),
            priority: priority, createdAt: createdAt))
        loraPool.append(contentsOf: loras)
    }

    public mutating func reserve(items count: Int, loras: Int) {
        items.reserveCapacity(count)
        loraPool.reserveCapacity(loras)
    }

    public func loras(of item: Item) -> ArraySlice<Int32> {
        loraPool[Int(item.loraStart) ..< Int(item.loraStart + item.loraCount)]
    }
}
