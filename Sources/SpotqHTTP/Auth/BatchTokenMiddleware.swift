import Hummingbird
import SpotqCore
import SpotqStore

/// Guards the pod routes (`/v1/batches/{id}/…`): the bearer token must be the own token of a
/// live pod of the batch in the URL (401 once that pod is terminated), or the batch's upload
/// token. 404 for an id that is not one, 401 without a token, 403 with any
/// other batch's token (or for a batch that does not exist, which is not revealed); else
/// the batch goes into the context's `authorisedBatch`.
public struct BatchTokenMiddleware: RouterMiddleware {
    public typealias Context = PodRequestContext

    let store: BatchAccessStore

    public init(store: BatchAccessStore) {
        self.store = store
    }

    /// The 64 hex digits compared when the batch is unknown, so timing does not tell.
    static let absentHash = String(repeating: "0", count: 64)

    public func handle(_ request: Request, context: PodRequestContext, next: (Request, PodRequestContext) async throws -> Response) async throws -> Response {
        guard let text = context.parameters.get("id"), let batch = Int64(text), batch > 0 else {
            throw SpotqHTTPError(.notFound, "no such batch")
        }
        guard let token = BearerToken.parse(request.headers) else {
            throw SpotqHTTPError(.unauthorized, "an Authorization: Bearer <batch upload token> header is required", realm: "spotq")
        }
        let hash = BatchToken.hash(token)
        // A pod's own token (minted per rental): valid for its batch while the pod lives.
        if let pod = try await store.podToken(hash: hash) {
            guard !pod.terminated else {
                throw SpotqHTTPError(.unauthorized, "this pod's token was revoked when the pod was terminated", realm: "spotq")
            }
            guard pod.batchID == batch else { throw SpotqHTTPError(.forbidden, "this token is not valid for batch \(batch)") }
            var context = context
            context.authorisedBatch = batch
            context.tokenHash = hash
            return try await next(request, context)
        }
        let stored = try await store.uploadTokenHash(batch: batch)
        // Hash and compare even when the batch is unknown.
        guard ConstantTime.equals(stored.flatMap { $0 } ?? Self.absentHash, hash), stored != nil else {
            throw SpotqHTTPError(.forbidden, "this token is not valid for batch \(batch)")
        }
        var context = context
        context.authorisedBatch = batch
        context.tokenHash = hash
        return try await next(request, context)
    }
}
