import DedicatedThread
import Foundation
import Logging
import PostgresClient
import SpotqBundle
import SpotqCore
import SpotqStore

/// Makes an uploaded bundle durable, exactly once, in an order that spends nothing on an
/// upload that will be refused or is not needed:
/// 1. the bundle's header (entries, declared sizes, its two JSON rows) is read;
/// 2. the item is checked against the database: in this batch, the same request, not yet
///    stored (an item stored already answers `alreadyStored` without inflating anything);
/// 3. the images are inflated straight into temporary files (hashed and counted as they
///    come; nothing of them is held in memory) and fsynced;
/// 4. `ResultRowStore` locks the item's row, and inside that transaction the files are
///    renamed into place and the rows written, so two uploads of one item (a retry, or a
///    second pod after a reclaim) cannot both store it.
/// Steps 1, 3 and the renames of 4 block (inflate, hash, write, fsync), so they run on the
/// ingest thread the caller was admitted to, never on Swift's cooperative pool.
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

    /// Stores the bundle `body` for an item of `batch`; blocking work runs on `thread`.
    public func store(_ body: Data, batch: Int64, limits: IngestLimits, on thread: DedicatedThread) async throws -> (item: Int64, outcome: Outcome) {
        let header = try await thread.run { try BundleReader.header(body, limits: limits) }
        let itemID = header.item.id
        guard let item = try await rows.item(itemID), item.batchID == batch else {
            throw IngestRefusal(.wrongBatch, "item \(itemID) is not in batch \(batch)")
        }
        guard item.requestID == header.item.requestID else {
            throw IngestRefusal.badBundle("request_id \"\(header.item.requestID.prefix(200))\" does not match item \(itemID)")
        }
        if let declared = header.item.batchID, declared != batch {
            throw IngestRefusal.badBundle("the bundle says batch \(declared) but was sent to batch \(batch)")
        }
        if item.isDone { return (itemID, .alreadyStored) }

        let folder = directory(batch: batch, item: itemID)
        let incoming = try await thread.run { try Self.writeIncoming(body, header: header, limits: limits, into: folder) }
        do {
            let files = incoming.map { ResultRowStore.StoredFile(row: $0.row, storagePath: "\(batch)/\(itemID)/\($0.row.filename)") }
            let created = try await rows.recordDone(item: itemID, files: files) {
                try await thread.run { try Self.moveIntoPlace(incoming, folder: folder) }
            }
            try? await thread.run { Self.discard(incoming) }
            return (itemID, created ? .created(files: incoming.count) : .alreadyStored)
        } catch {
            try? await thread.run { Self.discard(incoming) }
            throw error
        }
    }

    /// One verified image in its temporary file, and the name it is renamed to.
    struct Incoming: Sendable {
        var temporary: URL
        var final: URL
        var row: BundleFileRow
    }

    /// Inflates every image into a temporary file of its own in `folder` and fsyncs each; on
    /// any refusal the temporary files are removed before it is thrown.
    static func writeIncoming(_ body: Data, header: BundleHeader, limits: IngestLimits, into folder: URL) throws -> [Incoming] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporaries = header.files.map { folder.appendingPathComponent("\(incomingPrefix)\(UUID().uuidString)-\($0.filename)") }
        var descriptors: [Int32] = []
        defer { for descriptor in descriptors { close(descriptor) } }
        do {
            for temporary in temporaries {
                let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                guard descriptor >= 0 else { throw IngestRefusal(.storageFailed, "could not create \(temporary.lastPathComponent): \(String(cString: strerror(errno)))") }
                descriptors.append(descriptor)
            }
            let verified = try BundleReader.inflateImages(body, header: header, limits: limits) { index, chunk throws(IngestRefusal) in
                try writeAll(chunk, to: descriptors[index])
            }
            for descriptor in descriptors where fsync(descriptor) != 0 {
                throw IngestRefusal(.storageFailed, "could not flush an image to disk: \(String(cString: strerror(errno)))")
            }
            return zip(temporaries, verified).map { Incoming(temporary: $0, final: folder.appendingPathComponent($1.filename), row: $1) }
        } catch {
            for temporary in temporaries { unlink(temporary.path) }
            throw error
        }
    }

    static func moveIntoPlace(_ incoming: [Incoming], folder: URL) throws {
        for file in incoming {
            guard rename(file.temporary.path, file.final.path) == 0 else {
                throw IngestRefusal(.storageFailed, "could not move an image into place: \(String(cString: strerror(errno)))")
            }
        }
        syncDirectory(folder)
    }

    /// Removes temporary files that were not renamed (the item was stored meanwhile, or the
    /// transaction failed); after a successful rename there is nothing left to remove.
    static func discard(_ incoming: [Incoming]) {
        for file in incoming { unlink(file.temporary.path) }
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

    static func writeAll(_ data: Data, to descriptor: Int32) throws(IngestRefusal) {
        let failure: Int32? = data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let failure { throw IngestRefusal(.storageFailed, "could not write an image: \(String(cString: strerror(failure)))") }
    }

    /// Makes the renames themselves durable.
    static func syncDirectory(_ url: URL) {
        let descriptor = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
