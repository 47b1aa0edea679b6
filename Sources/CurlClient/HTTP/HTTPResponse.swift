/// What a server answered. Any status is a response; see ``requireSuccess()``.
public struct HTTPResponse: Sendable {
    /// The final status, after any redirects were followed.
    public var status: Int
    /// The final response's headers (not those of redirects on the way).
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The URL that answered, after redirects. It may carry secrets (signed URLs): do not log it.
    public var effectiveURL: String

    public init(status: Int, headers: HTTPHeaders, body: [UInt8], effectiveURL: String) {
        self.status = status
        self.headers = headers
        self.body = body
        self.effectiveURL = effectiveURL
    }

    /// True for `2xx`.
    public var isSuccess: Bool { (200..<300).contains(status) }

    /// The body as UTF-8 text (invalid sequences replaced).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// Returns self for a `2xx`; otherwise throws ``HTTPClientError/Code/httpStatus`` naming
    /// the status and the start of the body, retryable for 408, 425, 429 and most 5xx.
    @discardableResult
    public func requireSuccess() throws(HTTPClientError) -> HTTPResponse {
        guard isSuccess else {
            throw HTTPClientError.httpStatus(
                status, url: Redaction.redactedURL(effectiveURL),
                responseBody: HTTPClientError.bodySnippet(body, redactor: Redactor(url: effectiveURL)))
        }
        return self
    }
}
