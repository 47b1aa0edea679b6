/// How an ``HTTPClient`` talks to servers. Every field has a documented default, so
/// `CurlConfiguration()` is a safe start; ``validate()`` runs once when the client is made.
public struct CurlConfiguration: Sendable {
    /// Sent as `User-Agent`. Default `spotq/1 (libcurl)`: deliberately not browser-like, since
    /// some model hosts answer browsers with HTML or login redirects instead of JSON errors.
    public var userAgent: String

    /// Time allowed to resolve, connect and finish the TLS handshake. Default 10 s.
    public var connectTimeout: Duration

    /// Total time for ``HTTPClient/send(_:)`` when the request sets no timeout. Default 60 s.
    /// Downloads and uploads use ``stallTimeout`` instead, since their length is unbounded.
    public var requestTimeout: Duration

    /// A download or upload slower than ``stallMinimumBytesPerSecond`` for this long is
    /// aborted with a retryable ``HTTPClientError/Code/timeout``. Default 60 s.
    public var stallTimeout: Duration

    /// The speed under which a transfer counts as stalled. Default 1024 bytes/s.
    public var stallMinimumBytesPerSecond: Int

    /// Follow `3xx` redirects (model hosts redirect to CDNs). Default true. libcurl drops a
    /// custom `Authorization` header when a redirect goes to another host, port or scheme.
    public var followRedirects: Bool

    /// The most redirects followed for one request. Default 10.
    public var maxRedirects: Int

    /// Largest body ``HTTPClient/send(_:)`` keeps in memory; larger answers fail with
    /// ``HTTPClientError/Code/responseTooLarge``. Default 64 MiB. Downloads are not capped.
    public var maxResponseBytes: Int

    /// Turns TLS peer and host-name verification OFF. Default false; only for tests against
    /// self-signed servers. Never set it for traffic that carries credentials.
    public var insecureSkipTLSVerify: Bool

    /// A PEM file of CA certificates to trust instead of the system store. Default nil.
    public var caBundlePath: String?

    public init(
        userAgent: String = "spotq/1 (libcurl)",
        connectTimeout: Duration = .seconds(10),
        requestTimeout: Duration = .seconds(60),
        stallTimeout: Duration = .seconds(60),
        stallMinimumBytesPerSecond: Int = 1024,
        followRedirects: Bool = true,
        maxRedirects: Int = 10,
        maxResponseBytes: Int = 64 * 1024 * 1024,
        insecureSkipTLSVerify: Bool = false,
        caBundlePath: String? = nil
    ) {
        self.userAgent = userAgent
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.stallTimeout = stallTimeout
        self.stallMinimumBytesPerSecond = stallMinimumBytesPerSecond
        self.followRedirects = followRedirects
        self.maxRedirects = maxRedirects
        self.maxResponseBytes = maxResponseBytes
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.caBundlePath = caBundlePath
    }

    /// Checks that every value is usable; ``HTTPClient/init(configuration:logger:)`` calls it.
    public func validate() throws(HTTPClientError) {
        func require(_ condition: Bool, _ message: String) throws(HTTPClientError) {
            if !condition { throw HTTPClientError(code: .invalidConfiguration, message: message) }
        }
        try require(!userAgent.isEmpty && !userAgent.contains(where: \.isNewline), "userAgent must be one non-empty line")
        try require(connectTimeout > .zero, "connectTimeout must be positive")
        try require(requestTimeout > .zero, "requestTimeout must be positive")
        try require(stallTimeout >= .seconds(1), "stallTimeout must be at least 1 second")
        try require(stallMinimumBytesPerSecond > 0, "stallMinimumBytesPerSecond must be positive")
        try require(maxRedirects >= 0, "maxRedirects must not be negative")
        try require(maxResponseBytes > 0, "maxResponseBytes must be positive")
        if let caBundlePath {
            try require(!caBundlePath.isEmpty, "caBundlePath must not be empty when set")
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a tiny positive duration never becomes "no limit".
    var curlMilliseconds: Int {
        let (seconds, attoseconds) = components
        let millis = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int(max(millis, 1))
    }

    /// Whole seconds, at least 1.
    var curlSeconds: Int {
        Int(max(components.seconds + (components.attoseconds > 0 ? 1 : 0), 1))
    }
}
