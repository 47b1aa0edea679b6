import Hummingbird

/// Counts every answer of the results route in `spotq_uploads_total{outcome}` (and refusals
/// in `spotq_upload_failures_total`), whatever answered it: the route, the token check, or
/// an error on the way.
public struct UploadMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: SpotqMetrics

    public init(metrics: SpotqMetrics) {
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.upload(Self.outcome(response.status.code))
            return response
        } catch {
            metrics.upload(Self.outcome(SpotqHTTPError.status(answering: error).code))
            throw error
        }
    }

    /// An upload's answer as the metrics count it.
    static func outcome(_ status: Int) -> String {
        switch status {
        case 201: "stored"
        case 200: "duplicate"
        case 400..<500: "refused"
        default: "error"
        }
    }
}
