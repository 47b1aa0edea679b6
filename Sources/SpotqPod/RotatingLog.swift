import Foundation

/// A log file that is rotated once it passes `maxBytes`: `name` → `name.1` → … → `name.<keep>`
/// (the oldest dropped), so a pod's volume holds at most about (keep + 1) × maxBytes of it.
/// Writes come from one thread (the supervisor's reader).
public final class RotatingLog: @unchecked Sendable {
    public let path: String
    public let maxBytes: Int
    public let keep: Int
    private var handle: FileHandle
    private var size: Int

    public init(path: String, maxBytes: Int, keep: Int) throws {
        precondition(maxBytes > 0 && keep >= 0)
        self.path = path
        self.maxBytes = maxBytes
        self.keep = keep
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        (handle, size) = try Self.openForAppending(path)
    }

    static func openForAppending(_ path: String) throws -> (FileHandle, Int) {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let end = try handle.seekToEnd()
        return (handle, Int(end))
    }

    /// Appends `bytes`, rotating first when they would take the file past `maxBytes`
    /// (a file that is still empty takes them whatever their size).
    public func write(_ bytes: some DataProtocol) throws {
        if size > 0, size + bytes.count > maxBytes { try rotate() }
        try handle.write(contentsOf: bytes)
        size += bytes.count
    }

    func rotate() throws {
        try handle.close()
        let files = FileManager.default
        if keep == 0 {
            try? files.removeItem(atPath: path)
        } else {
            try? files.removeItem(atPath: "\(path).\(keep)")
            for index in stride(from: keep - 1, through: 1, by: -1) where files.fileExists(atPath: "\(path).\(index)") {
                try files.moveItem(atPath: "\(path).\(index)", toPath: "\(path).\(index + 1)")
            }
            try files.moveItem(atPath: path, toPath: "\(path).1")
        }
        (handle, size) = try Self.openForAppending(path)
    }

    public func close() { try? handle.close() }
}
