import Crypto
import Foundation
import SpotqCore
import ZIPFoundation

/// Builds a result bundle the way a pod sends it: `image_generation_queue.json`,
/// `image_generation_files.json` and the images, deflated, in memory.
public enum BundleWriter {
    public struct Image: Sendable {
        public var filename: String
        public var data: Data
        public init(filename: String, data: Data) {
            self.filename = filename
            self.data = data
        }
    }

    public static func make(item: BundleQueueRow, images: [Image]) throws -> Data {
        let rows = images.map { image in
            BundleFileRow(
                filename: image.filename, bytes: Int64(image.data.count),
                sha256: SHA256.hash(data: image.data).map { String(format: "%02x", $0) }.joined(),
                contentType: ImageMagic.contentType(of: image.data) ?? "application/octet-stream")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var entries: [(String, Data)] = [
            (BundleEntryName.queueRow, try encoder.encode(item)),
            (BundleEntryName.fileRows, try encoder.encode(rows)),
        ]
        entries += images.map { ($0.filename, $0.data) }
        return try zip(entries)
    }

    /// A zip of `entries` as given (names are not checked: tests build hostile ones too).
    public static func zip(_ entries: [(String, Data)], compression: CompressionMethod = .deflate) throws -> Data {
        let archive = try Archive(data: Data(), accessMode: .create)
        for (name, data) in entries {
            try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: compression) { position, size in
                data.subdata(in: Int(position) ..< Int(position) + size)
            }
        }
        guard let data = archive.data else { throw CocoaError(.fileWriteUnknown) }
        return data
    }
}
