import DedicatedThread
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension HTTPClient {
    /// Where ``download(_:to:expectedSHA256:expectedSize:maxBytesPerSecond:headers:progress:)``
    /// keeps the bytes of an unfinished download of `destination`: `<destination>.partial`.
    public static func partialFileURL(for destination: URL) -> URL {
        destination.deletingLastPathComponent().appendingPathComponent(destination.lastPathComponent + ".partial")
    }

    /// Downloads `url` to the file `destination`, resuming an earlier attempt, verifying, and
    /// moving the file into place atomically.
    ///
    /// - Bytes go to ``partialFileURL(for:)`` first. If that file exists, it is hashed and the
    ///   download resumes with `Range: bytes=<its size>-`. A `206` must start at that byte
    ///   (`Content-Range`); a `200` means the server ignored the range, so the file restarts
    ///   from zero in the same request; a `416` means the partial may already be whole, which
    ///   `Content-Range: bytes */<size>` (or `expectedSize`) confirms before verification. A
    ///   partial that cannot be continued is deleted and the download restarts once.
    /// - A cut-off or stalled transfer throws a retryable ``HTTPClientError`` (`partialTransfer`
    ///   or `timeout`) and keeps the partial file, flushed to disk, for the next call.
    /// - An HTTP error status (404, 403, 429, 5xx…) throws `httpStatus` and leaves any partial
    ///   file untouched: the status says nothing against the bytes already fetched, and a
    ///   later call (perhaps with a fresh signed URL) may resume them. The final SHA-256 check
    ///   guards against resuming the wrong file. Delete ``partialFileURL(for:)`` to give up.
    /// - With `expectedSize` or `expectedSHA256` (64 hex digits, any case), a mismatch throws
    ///   `sizeMismatch` / `checksumMismatch` and deletes the partial file: the bytes are bad.
    /// - On success the partial is flushed (`fsync`) and renamed over `destination`.
    ///
    /// No total timeout applies: a transfer slower than the configured stall speed for
    /// ``CurlConfiguration/stallTimeout`` is aborted instead. `maxBytesPerSecond` caps the
    /// receive speed. `progress` is called on the client's thread about every 100 ms.
    /// Only one download at a time may target a given destination.
    public func download(
        _ url: String,
        to destination: URL,
        expectedSHA256: String? = nil,
        expectedSize: Int64? = nil,
        maxBytesPerSecond: Int? = nil,
        headers: HTTPHeaders = [:],
        progress: (@Sendable (DownloadProgress) -> Void)? = nil
    ) async throws -> DownloadResult {
        let expectedDigest = try Self.validateDownloadArguments(
            destination: destination, expectedSHA256: expectedSHA256, expectedSize: expectedSize,
            maxBytesPerSecond: maxBytesPerSecond)
        let job = DownloadJob(
            url: url, destinationPath: destination.path,
            partialPath: Self.partialFileURL(for: destination).path,
            expectedSHA256: expectedDigest, expectedSize: expectedSize, headers: headers,
            options: TransferOptions(
                method: .get, url: url, headers: headers, detectStalls: true,
                maxReceiveBytesPerSecond: maxBytesPerSecond),
            progress: progress)
        return try await runOnThread { handle, cancellation in
            try self.performDownload(job, handle: handle, cancellation: cancellation)
        }
    }

    private static func validateDownloadArguments(
        destination: URL, expectedSHA256: String?, expectedSize: Int64?, maxBytesPerSecond: Int?
    ) throws(HTTPClientError) -> String? {
        func invalid(_ message: String) -> HTTPClientError {
            HTTPClientError(code: .invalidArgument, message: message)
        }
        guard destination.isFileURL, !destination.lastPathComponent.isEmpty else {
            throw invalid("the download destination must be a file URL")
        }
        if let expectedSize, expectedSize < 0 { throw invalid("expectedSize must not be negative") }
        if let maxBytesPerSecond, maxBytesPerSecond <= 0 { throw invalid("maxBytesPerSecond must be positive") }
        guard let expectedSHA256 else { return nil }
        let digest = expectedSHA256.lowercased()
        guard digest.count == 64, digest.allSatisfy(\.isHexDigit) else {
            throw invalid("expectedSHA256 must be 64 hexadecimal digits")
        }
        return digest
    }
}

/// Everything one download call needs on the client's thread.
struct DownloadJob: Sendable {
    var url: String
    var destinationPath: String
    var partialPath: String
    var expectedSHA256: String?
    var expectedSize: Int64?
    var headers: HTTPHeaders
    var options: TransferOptions
    var progress: (@Sendable (DownloadProgress) -> Void)?

    var redactedURL: String { Redaction.redactedURL(url) }
}

extension HTTPClient {
    /// How one attempt ended, short of an error.
    private enum AttemptOutcome {
        case finished(DownloadResult)
        /// The partial file was unusable and has been deleted: try once more from zero.
        case restart
    }

    /// Runs on the client's thread: at most two attempts, the second only from zero.
    func performDownload(_ job: DownloadJob, handle: CurlHandle, cancellation: CancellationFlag) throws -> DownloadResult {
        let started = ContinuousClock.now
        for attempt in 1...2 {
            switch try attemptDownload(job, handle: handle, cancellation: cancellation, started: started) {
            case .finished(let result):
                return result
            case .restart:
                logger.debug(
                    "download partial file unusable, restarting from zero",
                    metadata: [LogKeys.url: "\(job.redactedURL)", "attempt": "\(attempt)"])
            }
        }
        throw HTTPClientError(
            code: .invalidResponse, message: "the server did not honour a download from byte zero",
            url: job.redactedURL, isRetryable: true)
    }

    private func attemptDownload(
        _ job: DownloadJob, handle: CurlHandle, cancellation: CancellationFlag, started: ContinuousClock.Instant
    ) throws -> AttemptOutcome {
        let sink = DownloadSink(
            partialPath: job.partialPath, expectedSize: job.expectedSize,
            maxBytesPerSecond: job.options.maxReceiveBytesPerSecond, url: job.redactedURL,
            cancellation: cancellation, progress: job.progress)
        let offset = try sink.openExistingPartial(cancellation: cancellation)
        var options = job.options
        // `Range: bytes=<offset>-` via CURLOPT_RANGE rather than CURLOPT_RESUME_FROM_LARGE: the
        // latter makes libcurl fail a 200 answer with CURLE_RANGE_ERROR (so the whole file would
        // need a second request) and hide a 416 as success; we judge both ourselves.
        options.rangeStart = offset > 0 ? offset : nil
        logger.debug(
            "download starting",
            metadata: [LogKeys.url: "\(job.redactedURL)", LogKeys.resumedFrom: "\(offset)"])

        let transfer = Transfer(sink: sink, requestBody: nil, cancellation: cancellation)
        let outcome = handle.perform(options, configuration: configuration, transfer: transfer)
        let redactor = Redactor(url: job.url, headers: job.headers)

        guard outcome.succeeded else {
            if cancellation.isCancelled {
                sink.keep()
                throw CancellationError()
            }
            if sink.needsRestart {
                sink.delete()
                return .restart
            }
            if sink.failure?.code == .sizeMismatch {
                sink.delete()
            } else {
                sink.keep()
            }
            var error = try failure(
                of: outcome, transfer: transfer, sinkFailure: sink.failure, options: options, redactor: redactor)
            if error.code == .partialTransfer || error.code == .timeout {
                error.message += "; \(sink.prefixBytes + sink.fetchedBytes) bytes kept for resuming"
            }
            logFailure(options, error: error, since: started)
            throw error
        }

        let status = outcome.responseCode
        switch status {
        case 200..<300:
            sink.finishEmptyBody(status: status, headers: transfer.headers)
            if let failure = sink.failure {
                sink.delete()
                throw failure
            }
            return .finished(try finishDownload(job, sink: sink, status: status, started: started))
        case 416 where offset > 0:
            let total = transfer.headers["Content-Range"].flatMap(ContentRange.init)?.total
            let whole = total.map { $0 == offset } ?? (job.expectedSize == offset)
            guard whole else {
                sink.delete()
                return .restart
            }
            return .finished(try finishDownload(job, sink: sink, status: status, started: started))
        default:
            sink.keep()
            let error = HTTPClientError.httpStatus(
                status, url: job.redactedURL,
                responseBody: HTTPClientError.bodySnippet(sink.errorBody, redactor: redactor))
            logFailure(options, error: error, since: started)
            throw error
        }
    }

    /// Verifies the partial file and moves it into place.
    private func finishDownload(
        _ job: DownloadJob, sink: DownloadSink, status: Int, started: ContinuousClock.Instant
    ) throws(HTTPClientError) -> DownloadResult {
        let total = sink.prefixBytes + sink.fetchedBytes
        let digest = try sink.finish()
        if let expectedSize = job.expectedSize, total != expectedSize {
            sink.delete()
            throw HTTPClientError(
                code: .sizeMismatch, message: "downloaded \(total) bytes, expected \(expectedSize); file deleted",
                url: job.redactedURL, httpStatus: status)
        }
        if let expected = job.expectedSHA256, digest != expected {
            sink.delete()
            throw HTTPClientError(
                code: .checksumMismatch,
                message: "SHA-256 of the downloaded file is \(digest), expected \(expected); file deleted",
                url: job.redactedURL, httpStatus: status)
        }
        guard rename(job.partialPath, job.destinationPath) == 0 else {
            throw .io("cannot move \(job.partialPath) to \(job.destinationPath)", errno: errno)
        }
        syncDirectory(of: job.destinationPath)
        sink.reportProgress(force: true)
        let result = DownloadResult(
            totalBytes: total, fetchedBytes: sink.fetchedBytes, resumedFrom: sink.prefixBytes,
            sha256: digest, httpStatus: status)
        logger.debug(
            "download finished",
            metadata: [
                LogKeys.url: "\(job.redactedURL)", LogKeys.status: "\(status)", LogKeys.bytes: "\(total)",
                LogKeys.resumedFrom: "\(result.resumedFrom)",
                LogKeys.durationMilliseconds: "\(started.duration(to: .now).curlMilliseconds)",
            ])
        return result
    }
}
