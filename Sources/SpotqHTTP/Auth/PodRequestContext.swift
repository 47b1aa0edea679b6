import Hummingbird

/// The request context of the pod routes: after `BatchTokenMiddleware`, the batch the
/// request's bearer token was proven to be for.
public struct PodRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `BatchTokenMiddleware`; nil before it ran.
    public var authorisedBatch: Int64?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.authorisedBatch = nil
    }

    /// The authorised batch; a route outside `BatchTokenMiddleware` asking for one is a bug.
    public func requireAuthorisedBatch() throws -> Int64 {
        guard let authorisedBatch else { throw SpotqHTTPError.internalError }
        return authorisedBatch
    }
}
