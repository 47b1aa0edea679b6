/// A model file a queue item may name: a checkpoint or a LoRA, identified by its bare file
/// name, pinned by size and SHA-256, downloaded by pods from `sourceURL`.
public struct Asset: Sendable, Hashable, Codable {
    public var filename: String
    public var kind: AssetKind
    public var sizeBytes: Int64
    /// 64 lowercase hex digits.
    public var sha256: String
    public var sourceURL: String

    public init(filename: String, kind: AssetKind, sizeBytes: Int64, sha256: String, sourceURL: String) {
        self.filename = filename
        self.kind = kind
        self.sizeBytes = sizeBytes
        self.sha256 = sha256
        self.sourceURL = sourceURL
    }

    enum CodingKeys: String, CodingKey {
        case filename, kind
        case sizeBytes = "size_bytes"
        case sha256
        case sourceURL = "source_url"
    }
}

/// Where ComfyUI looks for the file: `models/checkpoints` or `models/loras`.
public enum AssetKind: String, Sendable, Hashable, Codable, CaseIterable {
    case checkpoint
    case lora
}
