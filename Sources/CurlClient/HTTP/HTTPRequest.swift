/// One HTTP request for ``HTTPClient/send(_:)``.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// An absolute `http` or `https` URL. Userinfo and query values in it are treated as
    /// secrets: they never appear in errors or logs.
    public var url: String
    public var headers: HTTPHeaders
    /// The request body, sent with `Content-Length`. nil sends none.
    public var body: [UInt8]?
    /// Total time allowed for this request; nil uses ``CurlConfiguration/requestTimeout``.
    public var timeout: Duration?

    public init(
        method: HTTPMethod = .get,
        url: String,
        headers: HTTPHeaders = [:],
        body: [UInt8]? = nil,
        timeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}
