import Foundation
import Logging
import PostgresClient
import SpotqBundle
import SpotqCore
import SpotqStore

/// Makes a validated bundle durable, exactly once: image bytes under the storage folder
/// (temporary name, fsync, rename), then the rows and the item's `done` status through
/// `ResultRowStore`, whose transaction locks the item's row so two uploads of the same item
/// (a retry, or a second pod after a reclaim) cannot both store it; the renames happen
/// inside that transaction.
public struct ResultStore: Sendable {
    public let rows: ResultRowStore
    public let storageDirectory: URL
    public let logger: Logger

    /// Prefix of files being written; a server that died mid-write leaves only these.
    static let incomingPrefix = ".incoming-"

    public init(postgres: PostgresClient, storageDirectory: URL, logger: Logger) {
        self.rows = ResultRowStore(client: postgres)
        self.storageDirectory = storageDirectory
        self.logger = logger
    }

    public enum Outcome: Sendable, Equatable {
        /// Stored now (HTTP 201).
        case created(files: Int)
        /// Stored before; nothing changed (HTTP 200).
        case alreadyStored
    }

    /// Where an item's files live: `<storage>/<batch>/<item>/<filename>`.
    public func directory(batch: Int64, item: Int64) -> URL {
        storageDirectory.appendingPathComponent(String(batch)).appendingPathComponent(String(item))
    }

    public func store(_ bundle: ValidatedBundle, batch: Int64) async throws -> Outcome {
        let itemID = bundle.item.id
        guard let item = try await rows.item(itemID), item.batchID == batch else {
            throw IngestRefusal(.wrongBatch, "item \(itemID) is not in batch \(batch)")
        }
        guard item.requestID == bundle.item.requestID else {
            throw IngestRefusal.badBundle("request_id \"\(bundle.item.requestID.prefix(200))\" does not match item \(itemID)")
        }
        if let declared = bundle.item.batchID, declared != batch {
            throw IngestRefusal.badBundle("the bundle says batch \(declared) but was sent to batch \(batch)")
        }
        if item.isDone { return .alreadyStored }

        let folder = directory(batch: batch, item: itemID)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var incoming: [(temporary: URL, final: URL, file: ValidatedBundle.File)] = []
        defer { for entry in incoming { unlink(entry.temporary.path) } }
        for file in bundle.files {
            let temporary = folder.appendingPathComponent("\(Self.incomingPrefix)\(UUID().uuidString)-\(file.row.filename)")
            try Self.writeDurably(file.data, to: temporary)
            incoming.append((temporary, folder.appendingPathComponent(file.row.filename), file))
        }
        let files = incoming.map { ResultRowStore.StoredFile(row: $0.file.row, storagePath: "\(batch)/\(itemID)/\($0.file.row.filename)") }
        let moves = incoming.map { ($0.temporary, $0.final) }
        let created = try await rows.recordDone(item: itemID, files: files) {
            for (temporary, final) in moves {
                guard rename(temporary.path, final.path) == 0 else {
                    throw IngestRefusal(.storageFailed, "could not move an image into place: \(String(cString: strerror(errno)))")
                }
            }
            Self.syncDirectory(folder)
        }
        return created ? .created(files: incoming.count) : .alreadyStored
    }

    /// Removes what a server killed mid-write left behind (older than `age`, so another
    /// server sharing the folder is not disturbed).
    public func removeStaleIncoming(olderThan age: TimeInterval = 3600) -> Int {
        guard let walker = FileManager.default.enumerator(at: storageDirectory, includingPropertiesForKeys: [.contentModificationDateKey]) else { return 0 }
        var removed = 0
        for case let url as URL in walker where url.lastPathComponent.hasPrefix(Self.incomingPrefix) {
            let modified = (try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
            if Date().timeIntervalSince(modified) > age, unlink(url.path) == 0 { removed += 1 }
        }
        return removed
    }

    /// Writes, flushes to disk, closes: after this the bytes survive a power cut.
    static func writeDurably(_ data: Data, to url: URL) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw IngestRefusal(.storageFailed, "could not create \(url.lastPathComponent): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        try data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw IngestRefusal(.storageFailed, "could not write an image: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
        guard fsync(descriptor) == 0 else { throw IngestRefusal(.storageFailed, "could not flush an image to disk: \(String(cString: strerror(errno)))") }
    }

    /// Makes the renames themselves durable.
    static func syncDirectory(_ url: URL) {
        let descriptor = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
