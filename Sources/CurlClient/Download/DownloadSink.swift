import DedicatedThread
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams a download's body into its partial file, hashing as it goes.
///
/// Decides what to do with each response when its first body byte (or its end) arrives:
/// `206` appends after the resumed prefix once `Content-Range` is checked, any other `2xx`
/// means the server ignored `Range` so the file restarts from zero, anything else is an
/// error whose body is kept only as a short snippet. Lives on the client's thread.
final class DownloadSink: ResponseSink {
    private enum State {
        case awaitingBody
        case writing
        case discarding
    }

    let partialPath: String
    private let expectedSize: Int64?
    private let progress: (@Sendable (DownloadProgress) -> Void)?
    private let url: String

    private var descriptor: Int32 = -1
    private var hasher = SHA256()
    private var state = State.awaitingBody
    private var lastReport = ContinuousClock.now
    private var pacer: ReceivePacer?
    private let cancellation: CancellationFlag

    /// Bytes of the partial file this attempt builds on (0 after a restart from zero).
    private(set) var prefixBytes: Int64 = 0
    /// What was asked for with `Range` (the partial's size when the attempt began).
    private(set) var requestedOffset: Int64 = 0
    /// Body bytes written by this attempt.
    private(set) var fetchedBytes: Int64 = 0
    /// The whole file's size, from the caller or the server.
    private(set) var expectedTotal: Int64?
    /// The first bytes of an error response's body.
    private(set) var errorBody: [UInt8] = []
    private(set) var failure: HTTPClientError?
    /// The partial file cannot be continued: start again from zero.
    private(set) var needsRestart = false

    init(
        partialPath: String, expectedSize: Int64?, maxBytesPerSecond: Int?, url: String,
        cancellation: CancellationFlag, progress: (@Sendable (DownloadProgress) -> Void)?
    ) {
        self.partialPath = partialPath
        self.pacer = maxBytesPerSecond.map { ReceivePacer(bytesPerSecond: $0, now: .now) }
        self.cancellation = cancellation
        self.expectedSize = expectedSize
        self.expectedTotal = expectedSize
        self.url = url
        self.progress = progress
    }

    /// Opens an existing partial file and hashes it, so the final digest covers the whole
    /// file. Returns its size, the offset to resume from. A partial longer than the expected
    /// size cannot be a prefix and is emptied.
    func openExistingPartial(cancellation: CancellationFlag) throws -> Int64 {
        let opened = open(partialPath, O_RDWR | O_CLOEXEC)
        guard opened >= 0 else {
            if errno == ENOENT { return 0 }
            throw HTTPClientError.io("cannot open the partial file \(partialPath)", errno: errno)
        }
        descriptor = opened
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw fail("cannot read the size of \(partialPath)") }
        var size = Int64(info.st_size)
        if let expectedSize, size > expectedSize {
            guard ftruncate(descriptor, 0) == 0 else { throw fail("cannot truncate \(partialPath)") }
            size = 0
        }
        let chunkSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var hashed: Int64 = 0
        while hashed < size {
            if cancellation.isCancelled { throw CancellationError() }
            let read = pread(descriptor, buffer.baseAddress, chunkSize, off_t(hashed))
            if read < 0 && errno == EINTR { continue }
            guard read > 0 else { throw fail("cannot read the partial file \(partialPath)") }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<read]))
            hashed += Int64(read)
        }
        guard lseek(descriptor, off_t(size), SEEK_SET) >= 0 else { throw fail("cannot seek in \(partialPath)") }
        prefixBytes = size
        requestedOffset = size
        return size
    }

    // MARK: ResponseSink

    func responseStarted(status: Int) {
        state = .awaitingBody
        errorBody.removeAll()
    }

    func receive(_ chunk: UnsafeRawBufferPointer, status: Int, headers: HTTPHeaders) -> Bool {
        if state == .awaitingBody {
            begin(status: status, headers: headers)
            if failure != nil { return false }
        }
        switch state {
        case .writing:
            return write(chunk)
        case .discarding, .awaitingBody:
            if errorBody.count < 512 { errorBody.append(contentsOf: chunk.prefix(512 - errorBody.count)) }
            return true
        }
    }

    /// For a body-less success (an empty file): make the decision no byte triggered.
    func finishEmptyBody(status: Int, headers: HTTPHeaders) {
        if state == .awaitingBody { begin(status: status, headers: headers) }
    }

    private func begin(status: Int, headers: HTTPHeaders) {
        switch status {
        case 206:
            guard let range = headers["Content-Range"].flatMap(ContentRange.init), let first = range.first,
                first == requestedOffset
            else {
                needsRestart = true
                failure = HTTPClientError(
                    code: .invalidResponse,
                    message: "the server answered a resume from byte \(requestedOffset) with a different range "
                        + "(\(headers["Content-Range"] ?? "no Content-Range"))",
                    url: url, httpStatus: status, isRetryable: true)
                return
            }
            if let total = range.total { checkTotal(total, status: status) }
            expectedTotal = expectedTotal ?? range.total
        case 200..<300:
            if prefixBytes > 0 {
                // Range ignored: the body is the whole file. Start the partial again.
                guard ftruncate(descriptor, 0) == 0, lseek(descriptor, 0, SEEK_SET) == 0 else {
                    failure = .io("cannot truncate \(partialPath)", errno: errno)
                    return
                }
                hasher = SHA256()
                prefixBytes = 0
            }
            if let length = headers["Content-Length"].flatMap({ Int64($0) }) {
                checkTotal(length, status: status)
                expectedTotal = expectedTotal ?? length
            }
        default:
            state = .discarding
            return
        }
        if failure == nil, descriptor < 0 {
            descriptor = open(partialPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if descriptor < 0 { failure = .io("cannot create \(partialPath)", errno: errno) }
        }
        if failure == nil { state = .writing }
    }

    private func checkTotal(_ total: Int64, status: Int) {
        guard let expectedSize, total != expectedSize else { return }
        failure = HTTPClientError(
            code: .sizeMismatch,
            message: "the server's file is \(total) bytes, not the expected \(expectedSize)",
            url: url, httpStatus: status)
    }

    private func write(_ chunk: UnsafeRawBufferPointer) -> Bool {
        if let expectedSize, prefixBytes + fetchedBytes + Int64(chunk.count) > expectedSize {
            failure = HTTPClientError(
                code: .sizeMismatch,
                message: "the server sent more than the expected \(expectedSize) bytes", url: url)
            return false
        }
        var remaining = chunk
        while !remaining.isEmpty {
            let written = posixWrite(descriptor, remaining)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                failure = .io("cannot write \(partialPath)", errno: errno)
                return false
            }
            remaining = UnsafeRawBufferPointer(rebasing: remaining[written...])
        }
        hasher.update(bufferPointer: chunk)
        fetchedBytes += Int64(chunk.count)
        reportProgress(force: false)
        return pace(chunk.count)
    }

    /// Holds the transfer to the speed cap by waiting here, on the client's thread, in short
    /// slices so cancellation still aborts at once. Returns false when cancelled.
    private func pace(_ bytes: Int) -> Bool {
        guard var pacer else { return true }
        var remaining = pacer.delay(afterReceiving: bytes, now: .now)
        self.pacer = pacer
        while remaining > .zero {
            if cancellation.isCancelled { return false }
            let slice = min(remaining, .milliseconds(20))
            let (seconds, attoseconds) = slice.components
            var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
            _ = nanosleep(&request, nil)
            remaining -= slice
        }
        return true
    }

    func reportProgress(force: Bool) {
        guard let progress else { return }
        let now = ContinuousClock.now
        guard force || now - lastReport >= .milliseconds(100) else { return }
        lastReport = now
        progress(DownloadProgress(
            receivedBytes: prefixBytes + fetchedBytes, expectedBytes: expectedTotal, resumedFrom: prefixBytes))
    }

    // MARK: Ending an attempt

    /// Flushes and closes the partial file, keeping it for a later resume.
    func keep() {
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        posixClose(descriptor)
        descriptor = -1
    }

    /// Closes and deletes the partial file.
    func delete() {
        if descriptor >= 0 {
            posixClose(descriptor)
            descriptor = -1
        }
        unlink(partialPath)
    }

    /// Flushes and closes the partial file; returns its SHA-256 as lowercase hex.
    func finish() throws(HTTPClientError) -> String {
        if descriptor < 0 {
            // Nothing was ever written (an empty body): the file must still exist.
            descriptor = open(partialPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw .io("cannot create \(partialPath)", errno: errno) }
        }
        guard fsync(descriptor) == 0 else {
            let code = errno
            keep()
            throw .io("cannot flush \(partialPath) to disk", errno: code)
        }
        posixClose(descriptor)
        descriptor = -1
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    deinit {
        if descriptor >= 0 { posixClose(descriptor) }
    }

    private func fail(_ message: String) -> HTTPClientError {
        .io(message, errno: errno)
    }
}
