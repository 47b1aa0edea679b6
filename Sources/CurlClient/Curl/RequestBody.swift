#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A request body that libcurl pulls through its read callback and can rewind (a 307/308
/// redirect sends the body again). File bodies are read in pieces, never loaded whole.
final class RequestBody {
    private enum Source {
        case bytes([UInt8])
        case file(descriptor: Int32, path: String)
    }

    private let source: Source
    let size: Int64
    private var offset: Int64 = 0

    init(bytes: [UInt8]) {
        source = .bytes(bytes)
        size = Int64(bytes.count)
    }

    /// Opens `path` for reading; the caller must ``close()`` it.
    init(fileAt path: String) throws(HTTPClientError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io("cannot open \(path) for upload", errno: errno) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let code = errno
            posixClose(descriptor)
            throw .io("cannot read the size of \(path)", errno: code)
        }
        source = .file(descriptor: descriptor, path: path)
        size = Int64(info.st_size)
    }

    func close() {
        if case .file(let descriptor, _) = source { posixClose(descriptor) }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, HTTPClientError> {
        let wanted = Int(min(Int64(buffer.count), size - offset))
        guard wanted > 0 else { return .success(0) }
        switch source {
        case .bytes(let bytes):
            bytes.withUnsafeBytes { all in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[Int(offset)..<Int(offset) + wanted]))
            }
            offset += Int64(wanted)
            return .success(wanted)
        case .file(let descriptor, let path):
            while true {
                let read = pread(descriptor, buffer.baseAddress, wanted, off_t(offset))
                if read < 0 && errno == EINTR { continue }
                guard read > 0 else {
                    return .failure(read == 0
                        ? HTTPClientError(code: .io, message: "\(path) shrank while it was being uploaded")
                        : .io("cannot read \(path) for upload", errno: errno))
                }
                offset += Int64(read)
                return .success(read)
            }
        }
    }

    func seek(to newOffset: Int64) -> Bool {
        guard newOffset >= 0, newOffset <= size else { return false }
        offset = newOffset
        return true
    }
}

extension HTTPClientError {
    /// A local file operation failed with `errno`.
    static func io(_ message: String, errno code: Int32) -> HTTPClientError {
        HTTPClientError(code: .io, message: "\(message): \(String(cString: strerror(code)))")
    }
}
