/// Every failure of this module: what went wrong, where (URL with secrets redacted), the
/// libcurl code and text when libcurl reported it, and whether trying again may help.
///
/// ``description`` is safe to log: it never holds header values, userinfo passwords or
/// query values, and any text from the server or libcurl has the request's secrets scrubbed.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure. A struct with static members, so new codes can be added without
    /// breaking anyone's `switch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// Could not resolve the host or connect to it.
        public static let connectionFailed = Code("connectionFailed")
        /// A connect, request or stall timeout expired.
        public static let timeout = Code("timeout")
        /// TLS handshake or certificate verification failed.
        public static let tls = Code("tls")
        /// The connection was cut off mid-transfer; a download keeps its partial file.
        public static let partialTransfer = Code("partialTransfer")
        /// A download's SHA-256 was not the expected one; the file was deleted.
        public static let checksumMismatch = Code("checksumMismatch")
        /// A download's size was not the expected one; the file was deleted.
        public static let sizeMismatch = Code("sizeMismatch")
        /// The server answered with a status the operation cannot use (see ``httpStatus``).
        public static let httpStatus = Code("httpStatus")
        /// The response body exceeded ``CurlConfiguration/maxResponseBytes``.
        public static let responseTooLarge = Code("responseTooLarge")
        /// The URL is malformed or not `http`/`https`.
        public static let invalidURL = Code("invalidURL")
        /// More redirects than ``CurlConfiguration/maxRedirects``.
        public static let tooManyRedirects = Code("tooManyRedirects")
        /// The server's answer broke HTTP or contradicted the request (e.g. a wrong `Content-Range`).
        public static let invalidResponse = Code("invalidResponse")
        /// The transfer was aborted on request. Task cancellation throws `CancellationError` instead.
        public static let cancelled = Code("cancelled")
        /// Reading or writing a local file failed.
        public static let io = Code("io")
        /// Encoding a request body or decoding a response body failed.
        public static let coding = Code("coding")
        /// An argument to a call is unusable (say, an expected SHA-256 that is not 64 hex digits).
        public static let invalidArgument = Code("invalidArgument")
        /// A ``CurlConfiguration`` value is unusable.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The client's thread has stopped.
        public static let clientStopped = Code("clientStopped")
        /// Anything else libcurl reported.
        public static let other = Code("other")
    }

    public var code: Code
    /// What happened, for a person; never holds a secret.
    public var message: String
    /// The request URL with userinfo and query values redacted.
    public var url: String?
    /// The HTTP status, when the failure is about one.
    public var httpStatus: Int?
    /// The start of the response body (up to 512 bytes, secrets scrubbed), for `httpStatus` errors.
    public var responseBody: String?
    /// The libcurl `CURLcode`, when libcurl reported the failure.
    public var curlCode: Int?
    /// `curl_easy_strerror` text plus libcurl's error buffer detail, secrets scrubbed.
    public var curlDetail: String?
    /// True when the same call may succeed later (connection trouble, timeouts, cut-off
    /// transfers, 408/425/429/5xx); false when only a change by the caller can help.
    public var isRetryable: Bool

    public init(
        code: Code,
        message: String,
        url: String? = nil,
        httpStatus: Int? = nil,
        responseBody: String? = nil,
        curlCode: Int? = nil,
        curlDetail: String? = nil,
        isRetryable: Bool = false
    ) {
        self.code = code
        self.message = message
        self.url = url
        self.httpStatus = httpStatus
        self.responseBody = responseBody
        self.curlCode = curlCode
        self.curlDetail = curlDetail
        self.isRetryable = isRetryable
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let url { text += " (\(url))" }
        if let httpStatus, code != .httpStatus { text += " [HTTP \(httpStatus)]" }
        if let responseBody, !responseBody.isEmpty { text += "; server said: \(responseBody)" }
        if let curlCode {
            text += "; curl \(curlCode)"
            if let curlDetail, !curlDetail.isEmpty { text += ": \(curlDetail)" }
        }
        if isRetryable { text += " (retryable)" }
        return text
    }
}

extension HTTPClientError {
    /// A status the caller did not want; retryable for 408, 425, 429 and 5xx but 501 and 505.
    static func httpStatus(_ status: Int, url: String, responseBody: String?) -> HTTPClientError {
        HTTPClientError(
            code: .httpStatus, message: "the server answered HTTP \(status)", url: url,
            httpStatus: status, responseBody: responseBody,
            isRetryable: isRetryableStatus(status))
    }

    static func isRetryableStatus(_ status: Int) -> Bool {
        switch status {
        case 408, 425, 429: true
        case 501, 505: false
        case 500..<600: true
        default: false
        }
    }

    /// The first 512 bytes of `body` as text, one line, with the request's secrets scrubbed.
    static func bodySnippet(_ body: [UInt8], redactor: Redactor) -> String? {
        guard !body.isEmpty else { return nil }
        var text = String(decoding: body.prefix(512), as: UTF8.self)
        text = String(text.map { $0.isNewline ? " " : $0 }).trimmingCharacters(in: .whitespaces)
        if body.count > 512 { text += "…" }
        return redactor.scrub(text)
    }
}
