import Hummingbird

/// The request context of the pod routes: after `BatchTokenMiddleware`, the batch the
/// request's bearer token was proven to be for.
public struct PodRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `BatchTokenMiddleware`; nil before it ran.
    public var authorisedBatch: Int64?
    /// The SHA-256 of the bearer token that proved it: who the request is from, for the
    /// per-token share of ingest slots (never the token itself).
    public var tokenHash: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.authorisedBatch = nil
        self.tokenHash = nil
    }

    /// The authorised batch; a route outside `BatchTokenMiddleware` asking for one is a bug.
    public func requireAuthorisedBatch() throws -> Int64 {
        guard let authorisedBatch else { throw SpotqHTTPError.internalError }
        return authorisedBatch
    }
}
