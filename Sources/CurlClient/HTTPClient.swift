import CCurl
import DedicatedThread
import Foundation
import Logging

/// An HTTP client on libcurl: requests, resumable verified downloads, streamed uploads.
///
/// Each client owns one ``DedicatedThread`` and one libcurl handle, reused for every call so
/// connections stay alive between requests. Blocking libcurl work runs only on that thread;
/// callers suspend. Calls on one client run one at a time in call order: use one client per
/// independent stream of work (say, one for model downloads and one for API calls) so a long
/// download never delays a short call. A client costs one thread.
///
/// Cancelling the calling task aborts its transfer within milliseconds and throws
/// `CancellationError`.
public final class HTTPClient: Sendable {
    public let configuration: CurlConfiguration
    let logger: Logger
    private let thread: DedicatedThread
    private let handle: CurlHandle

    /// Validates `configuration`, runs libcurl's global setup if no client has yet, and
    /// starts the client's thread (named `name` for debuggers and `ps -L`).
    public init(configuration: CurlConfiguration = CurlConfiguration(), logger: Logger, name: String = "spotq-curl")
        throws(HTTPClientError)
    {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.handle = try CurlHandle()
        self.thread = DedicatedThread(name: name)
    }

    /// Lets calls already made finish, then ends the client's thread; later calls fail
    /// with ``HTTPClientError/Code/clientStopped``. Dropping the client does the same.
    public func shutdown() {
        thread.stop()
    }

    /// Sends `request` and returns the response, whatever its status (see
    /// ``HTTPResponse/requireSuccess()``). Throws ``HTTPClientError`` when no response came
    /// (connection, TLS, timeout, a body over ``CurlConfiguration/maxResponseBytes``).
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let options = TransferOptions(
            method: request.method, url: request.url, headers: request.headers,
            bodySize: request.body.map { Int64($0.count) },
            totalTimeout: request.timeout ?? configuration.requestTimeout,
            maxResponseBytes: configuration.maxResponseBytes)
        return try await exchange(options, body: request.body)
    }

    /// Uploads the file at `path` as the raw request body (streamed from disk, never loaded
    /// whole) with `Content-Type: contentType`. No total timeout unless `timeout` is given;
    /// a transfer stalled for ``CurlConfiguration/stallTimeout`` is aborted.
    public func upload(
        fileAt path: String,
        to url: String,
        method: HTTPMethod = .put,
        contentType: String = "application/octet-stream",
        headers: HTTPHeaders = [:],
        timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        var headers = headers
        headers["Content-Type"] = contentType
        let options = TransferOptions(
            method: method, url: url, headers: headers, totalTimeout: timeout, detectStalls: true,
            maxResponseBytes: configuration.maxResponseBytes)
        return try await runOnThread { handle, cancellation in
            let body = try RequestBody(fileAt: path)
            defer { body.close() }
            var sized = options
            sized.bodySize = body.size
            return try self.perform(sized, body: body, handle: handle, cancellation: cancellation)
        }
    }

    /// Uploads `bytes` as the raw request body with `Content-Type: contentType`.
    public func upload(
        _ bytes: [UInt8],
        to url: String,
        method: HTTPMethod = .put,
        contentType: String = "application/octet-stream",
        headers: HTTPHeaders = [:],
        timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        var headers = headers
        headers["Content-Type"] = contentType
        let options = TransferOptions(
            method: method, url: url, headers: headers, bodySize: Int64(bytes.count),
            totalTimeout: timeout, detectStalls: true, maxResponseBytes: configuration.maxResponseBytes)
        return try await exchange(options, body: bytes)
    }

    // MARK: - Internals shared by requests, uploads and downloads

    private func exchange(_ options: TransferOptions, body: [UInt8]?) async throws -> HTTPResponse {
        try await runOnThread { handle, cancellation in
            try self.perform(options, body: body.map(RequestBody.init(bytes:)), handle: handle, cancellation: cancellation)
        }
    }

    /// One in-memory exchange. Runs on the client's thread.
    private func perform(
        _ options: TransferOptions, body: RequestBody?, handle: CurlHandle, cancellation: CancellationFlag
    ) throws -> HTTPResponse {
        let started = ContinuousClock.now
        let sink = MemorySink(limit: configuration.maxResponseBytes)
        let transfer = Transfer(sink: sink, requestBody: body, cancellation: cancellation)
        let outcome = handle.perform(options, configuration: configuration, transfer: transfer)
        let redactor = Redactor(url: options.url, headers: options.headers)
        guard outcome.succeeded else {
            let error = try failure(of: outcome, transfer: transfer, sinkFailure: sink.failure, options: options, redactor: redactor)
            logFailure(options, error: error, since: started)
            throw error
        }
        let response = HTTPResponse(
            status: outcome.responseCode, headers: transfer.headers, body: sink.body,
            effectiveURL: outcome.effectiveURL)
        logger.debug(
            "http request finished",
            metadata: [
                LogKeys.method: "\(options.method)", LogKeys.url: "\(Redaction.redactedURL(options.url))",
                LogKeys.status: "\(response.status)", LogKeys.bytes: "\(response.body.count)",
                LogKeys.durationMilliseconds: "\(started.duration(to: .now).curlMilliseconds)",
            ])
        return response
    }

    /// The error for a failed transfer: cancellation first, then whatever a callback recorded,
    /// then libcurl's own code. Throws `CancellationError` for a cancelled task.
    func failure(
        of outcome: TransferOutcome, transfer: Transfer, sinkFailure: HTTPClientError?,
        options: TransferOptions, redactor: Redactor
    ) throws -> HTTPClientError {
        if transfer.cancellation.isCancelled { throw CancellationError() }
        var error: HTTPClientError
        if let recorded = sinkFailure ?? transfer.failure {
            error = recorded
            error.curlCode = Int(outcome.code.rawValue)
            error.curlDetail = redactor.scrub(outcome.detail)
        } else {
            error = .fromCurl(outcome, url: options.url, redactor: redactor)
        }
        if error.url == nil { error.url = Redaction.redactedURL(options.url) }
        return error
    }

    func logFailure(_ options: TransferOptions, error: HTTPClientError, since started: ContinuousClock.Instant) {
        logger.debug(
            "http request failed",
            metadata: [
                LogKeys.method: "\(options.method)", LogKeys.url: "\(Redaction.redactedURL(options.url))",
                LogKeys.error: "\(error)",
                LogKeys.durationMilliseconds: "\(started.duration(to: .now).curlMilliseconds)",
            ])
    }

    /// Runs `body` on the client's thread with the handle and a cancellation flag that the
    /// calling task's cancellation sets (waking the transfer loop).
    func runOnThread<T: Sendable>(
        _ body: @escaping @Sendable (CurlHandle, CancellationFlag) throws -> T
    ) async throws -> T {
        let cancellation = CancellationFlag()
        let handle = self.handle
        do {
            return try await withTaskCancellationHandler {
                try await thread.run {
                    if cancellation.isCancelled { throw CancellationError() }
                    return try body(handle, cancellation)
                }
            } onCancel: {
                cancellation.cancel()
                handle.wakeup()
            }
        } catch is DedicatedThreadError {
            throw HTTPClientError(code: .clientStopped, message: "the HTTP client '\(thread.name)' has been shut down")
        }
    }
}
