/// Limits on a result upload; every one is a setting (README, "Result ingest").
public struct IngestLimits: Sendable, Equatable {
    /// Largest request body (the zip).
    public var maxBodyBytes = 64 << 20
    /// Largest expanded entry: checked while inflating, so a zip bomb stops here.
    public var maxFileBytes = 32 << 20
    /// Largest expanded total of a bundle's images: counted while inflating, so many files
    /// each under `maxFileBytes` cannot add up to a bomb either.
    public var maxExpandedBytes = 64 << 20
    /// Largest expanded JSON entry.
    public var maxJSONBytes = 1 << 20
    /// Most image files in one bundle.
    public var maxFiles = 16

    public init() {}
}

/// Why an upload (or a request about a batch) is refused: what kind of refusal, and a reason
/// a person can act on. The core says what went wrong; the HTTP layer alone decides which
/// status each kind is answered with.
public struct IngestRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kinds of refusal the ingest rules and the result store know.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The bundle is malformed: not a zip, wrong entries, JSON or digests that do not match.
        case badBundle
        /// The bundle, an entry or the number of images is over a limit (`IngestLimits`).
        case tooLarge
        /// A file, or the body, is not of a type spotq accepts (by its bytes or Content-Type).
        case unsupportedType
        /// The item is not in the batch the token was issued for.
        case wrongBatch
        /// The server could not make the result durable (disk full, permissions).
        case storageFailed
    }

    public var kind: Kind
    public var reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { "\(kind.rawValue): \(reason)" }

    public static func badBundle(_ reason: String) -> IngestRefusal { IngestRefusal(.badBundle, reason) }
    public static func tooLarge(_ reason: String) -> IngestRefusal { IngestRefusal(.tooLarge, reason) }
    public static func unsupportedType(_ reason: String) -> IngestRefusal { IngestRefusal(.unsupportedType, reason) }
}

/// The rules for names inside a bundle: flat file names only.
public enum BundleEntryName {
    public static let queueRow = "image_generation_queue.json"
    public static let fileRows = "image_generation_files.json"

    /// Nil when `name` is acceptable, else why not.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "an entry has an empty name" }
        if name.hasPrefix("/") || name.hasPrefix("\\") { return "entry \"\(name.prefix(100))\" has an absolute path" }
        if name.contains("..") { return "entry \"\(name.prefix(100))\" contains \"..\"" }
        if name.contains("/") || name.contains("\\") { return "entry \"\(name.prefix(100))\" is in a folder; bundles are flat" }
        if name.hasPrefix(".") { return "entry \"\(name.prefix(100))\" starts with a dot" }
        if name.utf8.count > 255 { return "entry name longer than 255 bytes" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "entry name with control characters" }
        return nil
    }
}

/// Image types by their first bytes, not by what a file claims to be.
public enum ImageMagic {
    public static func contentType(of bytes: some Collection<UInt8>) -> String? {
        let head = Array(bytes.prefix(12))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if head.count >= 12, head.starts(with: Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) { return "image/webp" }
        return nil
    }

    /// The extensions each type may carry (the `image_generation_files` constraint).
    public static func extensionMatches(_ filename: String, contentType: String) -> Bool {
        let lower = filename.lowercased()
        switch contentType {
        case "image/png": return lower.hasSuffix(".png")
        case "image/jpeg": return lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg")
        case "image/webp": return lower.hasSuffix(".webp")
        default: return false
        }
    }
}

/// `image_generation_queue.json`: the item the bundle is the result of. Other keys the
/// sender includes (the seed sends the whole row) are ignored.
public struct BundleQueueRow: Sendable, Equatable, Codable {
    public var id: Int64
    public var requestID: String
    public var batchID: Int64?

    public init(id: Int64, requestID: String, batchID: Int64?) {
        self.id = id
        self.requestID = requestID
        self.batchID = batchID
    }

    enum CodingKeys: String, CodingKey {
        case id
        case requestID = "request_id"
        case batchID = "batch_id"
    }
}

/// One element of `image_generation_files.json`.
public struct BundleFileRow: Sendable, Equatable, Codable {
    public var filename: String
    public var bytes: Int64
    public var sha256: String
    public var contentType: String

    public init(filename: String, bytes: Int64, sha256: String, contentType: String) {
        self.filename = filename
        self.bytes = bytes
        self.sha256 = sha256
        self.contentType = contentType
    }

    enum CodingKeys: String, CodingKey {
        case filename, bytes, sha256
        case contentType = "content_type"
    }
}
