import Crypto
import Foundation
import SpotqCore
import ZIPFoundation

/// A result bundle that passed every check: its item and its image files, in memory.
public struct ValidatedBundle: Sendable {
    public struct File: Sendable {
        public var row: BundleFileRow
        public var data: Data
    }

    public var item: BundleQueueRow
    public var files: [File]
}

/// Reads and checks a result bundle (a zip: `image_generation_queue.json`,
/// `image_generation_files.json` and the images) before anything is stored: entry names,
/// entry types, expanded sizes (counted while inflating, so a zip bomb stops at the cap),
/// CRCs, JSON shapes, file types by magic bytes, sizes and SHA-256 against the declared rows.
public enum BundleReader {
    public static func read(_ body: Data, limits: IngestLimits) throws(IngestRefusal) -> ValidatedBundle {
        guard body.count <= limits.maxBodyBytes else {
            throw .tooLarge("the bundle is \(body.count) bytes; the limit is \(limits.maxBodyBytes) (SPOTQ_UPLOAD_MAX_BYTES)")
        }
        let archive: Archive
        do {
            archive = try Archive(data: body, accessMode: .read)
        } catch {
            throw .badBundle("the body is not a readable zip archive (truncated or corrupt?)")
        }
        var entries: [String: Entry] = [:]
        var order: [String] = []
        for entry in archive {
            let name = entry.path
            if let problem = BundleEntryName.problem(name) { throw .badBundle(problem) }
            guard entry.type == .file else {
                throw .badBundle("entry \"\(name)\" is a \(entry.type == .symlink ? "symbolic link" : "folder"); only files are allowed")
            }
            guard entries[name] == nil else { throw .badBundle("entry \"\(name)\" appears twice") }
            entries[name] = entry
            order.append(name)
            guard order.count <= limits.maxFiles + 2 else {
                throw .tooLarge("the bundle has more than \(limits.maxFiles) images (SPOTQ_UPLOAD_MAX_FILES)")
            }
        }
        guard let queueEntry = entries[BundleEntryName.queueRow] else { throw .badBundle("\(BundleEntryName.queueRow) is missing") }
        guard let filesEntry = entries[BundleEntryName.fileRows] else { throw .badBundle("\(BundleEntryName.fileRows) is missing") }

        let item: BundleQueueRow
        do {
            item = try JSONDecoder().decode(BundleQueueRow.self, from: try extract(queueEntry, from: archive, cap: limits.maxJSONBytes))
        } catch let error as IngestRefusal {
            throw error
        } catch {
            throw .badBundle("\(BundleEntryName.queueRow) must be an object with \"id\" (integer) and \"request_id\" (string): \(error)")
        }
        let rows: [BundleFileRow]
        do {
            rows = try JSONDecoder().decode([BundleFileRow].self, from: try extract(filesEntry, from: archive, cap: limits.maxJSONBytes))
        } catch let error as IngestRefusal {
            throw error
        } catch {
            throw .badBundle("\(BundleEntryName.fileRows) must be an array of {filename, bytes, sha256, content_type}: \(error)")
        }
        guard !rows.isEmpty else { throw .badBundle("\(BundleEntryName.fileRows) lists no images") }
        let listed = Set(rows.map(\.filename))
        guard listed.count == rows.count else { throw .badBundle("\(BundleEntryName.fileRows) lists a file twice") }
        if let extra = order.first(where: { $0 != BundleEntryName.queueRow && $0 != BundleEntryName.fileRows && !listed.contains($0) }) {
            throw .badBundle("entry \"\(extra)\" is not listed in \(BundleEntryName.fileRows)")
        }

        var files: [ValidatedBundle.File] = []
        for row in rows {
            if let problem = BundleEntryName.problem(row.filename) { throw .badBundle(problem) }
            guard let entry = entries[row.filename] else { throw .badBundle("\"\(row.filename)\" is listed but not in the bundle") }
            let data = try extract(entry, from: archive, cap: limits.maxFileBytes)
            guard Int64(data.count) == row.bytes else {
                throw .badBundle("\"\(row.filename)\" is \(data.count) bytes, not the declared \(row.bytes)")
            }
            let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            guard digest == row.sha256.lowercased() else {
                throw .badBundle("\"\(row.filename)\" has SHA-256 \(digest), not the declared \(row.sha256.prefix(64))")
            }
            guard let actual = ImageMagic.contentType(of: data) else {
                throw .unsupportedType("\"\(row.filename)\" is not a PNG, JPEG or WebP image (by its first bytes)")
            }
            guard actual == row.contentType else {
                throw .unsupportedType("\"\(row.filename)\" is \(actual), not the declared \(row.contentType.prefix(50))")
            }
            guard ImageMagic.extensionMatches(row.filename, contentType: actual) else {
                throw .badBundle("\"\(row.filename)\" does not end in the extension of \(actual)")
            }
            var clean = row
            clean.sha256 = digest
            files.append(.init(row: clean, data: data))
        }
        return ValidatedBundle(item: item, files: files)
    }

    /// Inflates `entry`, counting bytes as they come: more than `cap` stops at once.
    static func extract(_ entry: Entry, from archive: Archive, cap: Int) throws(IngestRefusal) -> Data {
        // A size the zip itself declares over the cap is refused before inflating anything.
        guard entry.uncompressedSize <= UInt64(cap) else {
            throw .tooLarge("entry \"\(entry.path)\" declares \(entry.uncompressedSize) bytes expanded; the limit is \(cap) (SPOTQ_UPLOAD_MAX_FILE_BYTES)")
        }
        struct TooLarge: Error {}
        var data = Data()
        do {
            _ = try archive.extract(entry, skipCRC32: false) { chunk in
                guard data.count + chunk.count <= cap else { throw TooLarge() }
                data.append(chunk)
            }
        } catch is TooLarge {
            throw .tooLarge("entry \"\(entry.path)\" expands beyond \(cap) bytes (SPOTQ_UPLOAD_MAX_FILE_BYTES); a zip bomb?")
        } catch {
            throw .badBundle("entry \"\(entry.path)\" cannot be read: \(error) (corrupt or truncated zip)")
        }
        return data
    }
}
