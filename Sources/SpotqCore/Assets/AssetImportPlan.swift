/// What importing a file would change, decided against the registry as it is. Pure: the
/// store applies it in one transaction.
///
/// A file name that is already registered with the same kind, size and hash is unchanged
/// (re-importing a file is a no-op); a new `source_url` for it is an update (the file moved,
/// its bytes did not). A different kind, size or hash is a conflict: it is reported and
/// never overwritten, because pods and planned batches rely on the registered bytes.
public struct AssetImportPlan: Sendable, Equatable {
    public var inserts: [Asset] = []
    public var sourceURLUpdates: [Asset] = []
    public var unchanged: [Asset] = []
    public var conflicts: [AssetConflict] = []

    public init(incoming: [Asset], registered: [String: Asset]) {
        var seen = Set<String>()
        for asset in incoming where seen.insert(asset.filename).inserted {
            guard let existing = registered[asset.filename] else {
                inserts.append(asset)
                continue
            }
            var differences: [String] = []
            if existing.kind != asset.kind { differences.append("kind \(existing.kind.rawValue) → \(asset.kind.rawValue)") }
            if existing.sizeBytes != asset.sizeBytes { differences.append("size_bytes \(existing.sizeBytes) → \(asset.sizeBytes)") }
            if existing.sha256 != asset.sha256 { differences.append("sha256 \(existing.sha256.prefix(12))… → \(asset.sha256.prefix(12))…") }
            if !differences.isEmpty {
                conflicts.append(AssetConflict(filename: asset.filename, registered: existing, incoming: asset, differences: differences))
            } else if existing.sourceURL != asset.sourceURL {
                sourceURLUpdates.append(asset)
            } else {
                unchanged.append(asset)
            }
        }
    }
}

/// A file name registered with other bytes than the import file says.
public struct AssetConflict: Sendable, Equatable, CustomStringConvertible {
    public var filename: String
    public var registered: Asset
    public var incoming: Asset
    public var differences: [String]

    public var description: String {
        "\(filename): registered with \(differences.joined(separator: ", ")); not changed "
            + "(a new file needs a new name)"
    }
}
