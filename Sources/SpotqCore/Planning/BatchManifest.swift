/// What a pod needs to set up its batch, served at `GET /v1/batches/{id}/manifest`: the
/// assets in download order with where to get them and how to verify them, and the
/// planner's estimates. It holds no secret.
public struct BatchManifest: Sendable, Equatable, Codable {
    public var version = 1
    public var batchID: Int64
    public var gpuType: String
    /// In download order.
    public var assets: [Asset]
    public var checkpoints: [String]
    public var itemCount: Int
    public var payloadBytes: Int64
    public var orderStrategy: String
    public var estimate: BatchEstimate
    /// One pod's predicted timeline under the chosen order.
    public var predicted: Timeline

    public init(
        batchID: Int64, gpuType: String, assets: [Asset], checkpoints: [String], itemCount: Int,
        payloadBytes: Int64, orderStrategy: String, estimate: BatchEstimate, predicted: Timeline
    ) {
        self.batchID = batchID
        self.gpuType = gpuType
        self.assets = assets
        self.checkpoints = checkpoints
        self.itemCount = itemCount
        self.payloadBytes = payloadBytes
        self.orderStrategy = orderStrategy
        self.estimate = estimate
        self.predicted = predicted
    }

    enum CodingKeys: String, CodingKey {
        case version
        case batchID = "batch_id"
        case gpuType = "gpu_type"
        case assets, checkpoints
        case itemCount = "item_count"
        case payloadBytes = "payload_bytes"
        case orderStrategy = "order_strategy"
        case estimate, predicted
    }
}
