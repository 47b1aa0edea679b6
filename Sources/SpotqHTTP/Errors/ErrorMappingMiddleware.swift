import Hummingbird
import Logging
import SpotqCore

/// Outermost on every spotq router: turns an ingest refusal into its `SpotqHTTPError`, logs
/// each refusal once (notice) and each unexpected error once (error), and answers the latter
/// with a 500 that says little. Hummingbird's own errors (an unknown route) pass unchanged.
public struct ErrorMappingMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    /// Names the listener in the log ("ingest", "ops").
    let area: String

    public init(area: String, logger: Logger) {
        self.area = area
        self.logger = logger
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as SpotqHTTPError {
            throw logged(error)
        } catch let refusal as IngestRefusal {
            throw logged(SpotqHTTPError(refusal))
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            logger.error("\(area): failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw SpotqHTTPError.internalError
        }
    }

    func logged(_ error: SpotqHTTPError) -> SpotqHTTPError {
        if error.status.code >= 500 {
            logger.error("\(area): \(error.reason)")
        } else {
            logger.notice("\(area): refused", metadata: ["status": "\(error.status.code)", "reason": "\(error.reason)"])
        }
        return error
    }
}
