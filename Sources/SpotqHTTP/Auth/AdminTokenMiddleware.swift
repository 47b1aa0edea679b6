import Foundation
import Hummingbird
import SpotqCore

/// Guards the ops routes' data and actions: `Authorization: Bearer <SPOTQ_ADMIN_TOKEN>`.
/// 503 when the server has no admin token (and how to set one), 401 without a token, 403
/// with a wrong one. A request that changes something (not GET or HEAD) whose `Origin` is
/// not this server is refused as well (defence in depth: the bearer header already cannot
/// be forged cross-site, since the page keeps the token in session storage, never a cookie).
public struct AdminTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let adminToken: String?

    public init(adminToken: String?) {
        self.adminToken = adminToken
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let adminToken else {
            throw SpotqHTTPError(.serviceUnavailable, "set SPOTQ_ADMIN_TOKEN (32 or more characters) on the server to use the dashboard")
        }
        guard let token = BearerToken.parse(request.headers) else {
            throw SpotqHTTPError(.unauthorized, "an Authorization: Bearer <SPOTQ_ADMIN_TOKEN> header is required", realm: "spotq-admin")
        }
        guard ConstantTime.equals(BatchToken.hash(token), BatchToken.hash(adminToken)) else { throw SpotqHTTPError(.forbidden, "wrong admin token") }
        if request.method != .get, request.method != .head { try Self.checkOrigin(request) }
        return try await next(request, context)
    }

    /// Refuses a request sent by a page of another origin.
    static func checkOrigin(_ request: Request) throws {
        guard let origin = request.headers[.origin] else { return }
        let host = request.head.authority ?? ""
        guard let url = URL(string: origin), let originHost = url.host else { throw SpotqHTTPError(.forbidden, "cross-site request refused") }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        guard originAuthority == host else { throw SpotqHTTPError(.forbidden, "cross-site request refused (Origin \(origin) is not \(host))") }
    }
}
