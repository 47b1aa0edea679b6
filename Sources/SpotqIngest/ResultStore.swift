import Foundation
import Logging
import PostgresClient
import SpotqCore

/// Makes a validated bundle durable, exactly once: image bytes under the storage folder
/// (temporary name, fsync, rename), then the `image_generation_files` rows and the item's
/// `done` status in one transaction, with the item's row locked so two uploads of the same
/// item (a retry, or a second pod after a reclaim) cannot both store it.
public struct ResultStore: Sendable {
    public let postgres: PostgresClient
    public let storageDirectory: URL
    public let logger: Logger

    /// Prefix of files being written; a server that died mid-write leaves only these.
    static let incomingPrefix = ".incoming-"

    public init(postgres: PostgresClient, storageDirectory: URL, logger: Logger) {
        self.postgres = postgres
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
        let rows = try await postgres.query("SELECT batch_id, request_id, status FROM image_generation_queue WHERE id = \(itemID)")
        guard let row = rows.first, try row.decode(Int64?.self, at: 0) == batch else {
            throw IngestError(403, "item \(itemID) is not in batch \(batch)")
        }
        guard try row.decode(String.self, at: 1) == bundle.item.requestID else {
            throw IngestError.badBundle("request_id \"\(bundle.item.requestID.prefix(200))\" does not match item \(itemID)")
        }
        if let declared = bundle.item.batchID, declared != batch {
            throw IngestError.badBundle("the bundle says batch \(declared) but was sent to batch \(batch)")
        }
        if try row.decode(String.self, at: 2) == "done" { return .alreadyStored }

        let folder = directory(batch: batch, item: itemID)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var incoming: [(temporary: URL, final: URL, file: ValidatedBundle.File)] = []
        defer { for entry in incoming { unlink(entry.temporary.path) } }
        for file in bundle.files {
            let temporary = folder.appendingPathComponent("\(Self.incomingPrefix)\(UUID().uuidString)-\(file.row.filename)")
            try Self.writeDurably(file.data, to: temporary)
            incoming.append((temporary, folder.appendingPathComponent(file.row.filename), file))
        }
        return try await postgres.withTransaction { connection in
            let status = try await connection.query("SELECT status FROM image_generation_queue WHERE id = \(itemID) FOR UPDATE")
            guard try status[0].decode(String.self, at: 0) != "done" else { return .alreadyStored }
            for entry in incoming {
                guard rename(entry.temporary.path, entry.final.path) == 0 else {
                    throw IngestError(500, "could not move an image into place: \(String(cString: strerror(errno)))")
                }
            }
            Self.syncDirectory(folder)
            for entry in incoming {
                let row = entry.file.row
                try await connection.query("""
                    INSERT INTO image_generation_files (item_id, filename, bytes, sha256, content_type, storage_path)
                    VALUES (\(itemID), \(row.filename), \(row.bytes), \(row.sha256), \(row.contentType),
                            \("\(batch)/\(itemID)/\(row.filename)"))
                    ON CONFLICT (item_id, filename) DO NOTHING
                    """)
            }
            try await connection.query("""
                UPDATE image_generation_queue SET status = 'done', finished_at = now(), last_error = NULL WHERE id = \(itemID)
                """)
            return .created(files: incoming.count)
        }
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
        guard descriptor >= 0 else { throw IngestError(500, "could not create \(url.lastPathComponent): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        try data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw IngestError(500, "could not write an image: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
        guard fsync(descriptor) == 0 else { throw IngestError(500, "could not flush an image to disk: \(String(cString: strerror(errno)))") }
    }

    /// Makes the renames themselves durable.
    static func syncDirectory(_ url: URL) {
        let descriptor = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
