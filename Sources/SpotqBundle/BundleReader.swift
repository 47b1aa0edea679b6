import Crypto
import Foundation
import SpotqCore
import ZIPFoundation

/// What a result bundle says about itself, read without inflating any image: its item and
/// the image files it declares.
public struct BundleHeader: Sendable, Equatable {
    public var item: BundleQueueRow
    public var files: [BundleFileRow]
}

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
/// `image_generation_files.json` and the images) in two steps, so the server can check the
/// item against the database between them and inflate nothing for an item that is not
/// this batch's or is stored already:
/// 1. ``header(_:limits:)``: entry names and types, the number of images, the sizes the zip
///    declares (each and in total), the two JSON entries;
/// 2. ``inflateImages(_:header:limits:into:)``: each image inflated chunk by chunk into the
///    caller's sink, its expanded size counted as it comes (so a zip bomb stops at the cap),
///    its CRC, size, SHA-256 and file type (by magic bytes) checked against its row.
public enum BundleReader {
    public static func header(_ body: Data, limits: IngestLimits) throws(IngestRefusal) -> BundleHeader {
        let (archive, entries) = try open(body, limits: limits)
        guard let queueEntry = entries.byName[BundleEntryName.queueRow] else { throw .badBundle("\(BundleEntryName.queueRow) is missing") }
        guard let filesEntry = entries.byName[BundleEntryName.fileRows] else { throw .badBundle("\(BundleEntryName.fileRows) is missing") }

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
        if let extra = entries.order.first(where: { $0 != BundleEntryName.queueRow && $0 != BundleEntryName.fileRows && !listed.contains($0) }) {
            throw .badBundle("entry \"\(extra)\" is not listed in \(BundleEntryName.fileRows)")
        }
        var declaredTotal: Int64 = 0
        for row in rows {
            if let problem = BundleEntryName.problem(row.filename) { throw .badBundle(problem) }
            guard entries.byName[row.filename] != nil else { throw .badBundle("\"\(row.filename)\" is listed but not in the bundle") }
            guard (0...Int64(limits.maxFileBytes)).contains(row.bytes) else {
                throw .tooLarge("\"\(row.filename)\" declares \(row.bytes) bytes; the limit is \(limits.maxFileBytes) (SPOTQ_UPLOAD_MAX_FILE_BYTES)")
            }
            declaredTotal += row.bytes
        }
        guard declaredTotal <= Int64(limits.maxExpandedBytes) else {
            throw .tooLarge("the images declare \(declaredTotal) bytes in all; the limit is \(limits.maxExpandedBytes) (SPOTQ_UPLOAD_MAX_EXPANDED_BYTES)")
        }
        return BundleHeader(item: item, files: rows)
    }

    /// Inflates every image `header` lists, in order, handing each chunk to `sink` with the
    /// image's index; returns the rows with their SHA-256 as computed (lowercase). Throws at
    /// the first image that does not match its row; what `sink` throws passes through.
    public static func inflateImages(
        _ body: Data, header: BundleHeader, limits: IngestLimits,
        into sink: (_ index: Int, _ chunk: Data) throws(IngestRefusal) -> Void
    ) throws(IngestRefusal) -> [BundleFileRow] {
        let (archive, entries) = try open(body, limits: limits)
        var verified: [BundleFileRow] = []
        var expandedTotal = 0
        for (index, row) in header.files.enumerated() {
            guard let entry = entries.byName[row.filename] else { throw .badBundle("\"\(row.filename)\" is listed but not in the bundle") }
            var hasher = SHA256()
            var head = Data()
            var bytes = 0
            try inflate(entry, from: archive, cap: limits.maxFileBytes, totalSoFar: &expandedTotal, totalCap: limits.maxExpandedBytes) { (chunk: Data) throws(IngestRefusal) in
                hasher.update(data: chunk)
                if head.count < 12 { head.append(chunk.prefix(12 - head.count)) }
                bytes += chunk.count
                try sink(index, chunk)
            }
            guard Int64(bytes) == row.bytes else {
                throw .badBundle("\"\(row.filename)\" is \(bytes) bytes, not the declared \(row.bytes)")
            }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            guard digest == row.sha256.lowercased() else {
                throw .badBundle("\"\(row.filename)\" has SHA-256 \(digest), not the declared \(row.sha256.prefix(64))")
            }
            guard let actual = ImageMagic.contentType(of: head) else {
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
            verified.append(clean)
        }
        return verified
    }

    /// Both steps with the images in memory (for tools and tests; the server streams them to disk).
    public static func read(_ body: Data, limits: IngestLimits) throws(IngestRefusal) -> ValidatedBundle {
        let header = try header(body, limits: limits)
        var contents = Array(repeating: Data(), count: header.files.count)
        let rows = try inflateImages(body, header: header, limits: limits) { index, chunk in contents[index].append(chunk) }
        return ValidatedBundle(item: header.item, files: zip(rows, contents).map { .init(row: $0, data: $1) })
    }

    /// The archive's entries by name and in order, after the checks that need no inflating.
    private struct Entries {
        var byName: [String: Entry] = [:]
        var order: [String] = []
    }

    private static func open(_ body: Data, limits: IngestLimits) throws(IngestRefusal) -> (Archive, Entries) {
        guard body.count <= limits.maxBodyBytes else {
            throw .tooLarge("the bundle is \(body.count) bytes; the limit is \(limits.maxBodyBytes) (SPOTQ_UPLOAD_MAX_BYTES)")
        }
        let archive: Archive
        do {
            archive = try Archive(data: body, accessMode: .read)
        } catch {
            throw .badBundle("the body is not a readable zip archive (truncated or corrupt?)")
        }
        var entries = Entries()
        var declaredTotal: UInt64 = 0
        for entry in archive {
            let name = entry.path
            if let problem = BundleEntryName.problem(name) { throw .badBundle(problem) }
            guard entry.type == .file else {
                throw .badBundle("entry \"\(name)\" is a \(entry.type == .symlink ? "symbolic link" : "folder"); only files are allowed")
            }
            guard entries.byName[name] == nil else { throw .badBundle("entry \"\(name)\" appears twice") }
            entries.byName[name] = entry
            entries.order.append(name)
            guard entries.order.count <= limits.maxFiles + 2 else {
                throw .tooLarge("the bundle has more than \(limits.maxFiles) images (SPOTQ_UPLOAD_MAX_FILES)")
            }
            // Sizes the zip itself declares over a cap are refused before inflating anything.
            let isJSON = name == BundleEntryName.queueRow || name == BundleEntryName.fileRows
            let cap = isJSON ? limits.maxJSONBytes : limits.maxFileBytes
            guard entry.uncompressedSize <= UInt64(cap) else {
                throw .tooLarge("entry \"\(name)\" declares \(entry.uncompressedSize) bytes expanded; the limit is \(cap) (\(isJSON ? "for the JSON entries" : "SPOTQ_UPLOAD_MAX_FILE_BYTES"))")
            }
            declaredTotal += entry.uncompressedSize
            guard declaredTotal <= UInt64(limits.maxExpandedBytes) + UInt64(2 * limits.maxJSONBytes) else {
                throw .tooLarge("the bundle's entries declare more than \(limits.maxExpandedBytes) bytes expanded in all (SPOTQ_UPLOAD_MAX_EXPANDED_BYTES)")
            }
        }
        return (archive, entries)
    }

    /// Inflates a JSON entry into memory.
    static func extract(_ entry: Entry, from archive: Archive, cap: Int) throws(IngestRefusal) -> Data {
        var data = Data()
        var total = 0
        try inflate(entry, from: archive, cap: cap, totalSoFar: &total, totalCap: cap) { (chunk: Data) throws(IngestRefusal) in data.append(chunk) }
        return data
    }

    /// Inflates `entry` chunk by chunk, counting as the bytes come: past `cap` for the entry or
    /// `totalCap` for the whole bundle, it stops at once.
    static func inflate(
        _ entry: Entry, from archive: Archive, cap: Int, totalSoFar total: inout Int, totalCap: Int,
        _ consume: (Data) throws(IngestRefusal) -> Void
    ) throws(IngestRefusal) {
        struct Stop: Error { var refusal: IngestRefusal }
        var bytes = 0
        var running = total
        do {
            _ = try archive.extract(entry, skipCRC32: false) { chunk in
                bytes += chunk.count
                running += chunk.count
                guard bytes <= cap else {
                    throw Stop(refusal: .tooLarge("entry \"\(entry.path)\" expands beyond \(cap) bytes (SPOTQ_UPLOAD_MAX_FILE_BYTES); a zip bomb?"))
                }
                guard running <= totalCap else {
                    throw Stop(refusal: .tooLarge("the bundle expands beyond \(totalCap) bytes in all (SPOTQ_UPLOAD_MAX_EXPANDED_BYTES); a zip bomb?"))
                }
                do throws(IngestRefusal) { try consume(chunk) } catch { throw Stop(refusal: error) }
            }
        } catch let stop as Stop {
            throw stop.refusal
        } catch {
            throw .badBundle("entry \"\(entry.path)\" cannot be read: \(error) (corrupt or truncated zip)")
        }
        total = running
    }
}
