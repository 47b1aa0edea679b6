import Foundation
import HTTPTypes
import Hummingbird
import SpotqCore

/// Every refusal the spotq HTTP server answers with: a status and a reason a person can act
/// on, sent as `{"error": "<reason>"}`; a 401 says how to authenticate (WWW-Authenticate).
public struct SpotqHTTPError: HTTPResponseError, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var reason: String
    /// The realm of the `WWW-Authenticate: Bearer` challenge a 401 carries.
    public var realm: String?
    /// Sent as `Retry-After` (a 429 or 503 says when to come back).
    public var retryAfterSeconds: Int?

    public init(_ status: HTTPResponse.Status, _ reason: String, realm: String? = nil, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.reason = reason
        self.realm = realm
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// An ingest refusal answered with the status of its kind.
    public init(_ refusal: IngestRefusal) {
        self.init(Self.status(of: refusal.kind), refusal.reason)
    }

    /// The one place a refusal's kind becomes an HTTP status.
    public static func status(of kind: IngestRefusal.Kind) -> HTTPResponse.Status {
        switch kind {
        case .badBundle: .badRequest
        case .tooLarge: .contentTooLarge
        case .unsupportedType: .unsupportedMediaType
        case .wrongBatch: .forbidden
        case .storageFailed: .internalServerError
        }
    }

    /// What the server answers for anything a route or middleware threw.
    public static let internalError = SpotqHTTPError(.internalServerError, "internal error; try again later")

    /// The status `error` is answered with (500 for errors that are not refusals).
    public static func status(answering error: any Error) -> HTTPResponse.Status {
        switch error {
        case let error as SpotqHTTPError: error.status
        case let refusal as IngestRefusal: status(of: refusal.kind)
        case let error as any HTTPResponseError: error.status
        default: .internalServerError
        }
    }

    public var description: String { "\(status.code): \(reason)" }

    struct Body: Encodable {
        var error: String
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .unauthorized, let realm { headers[.wwwAuthenticate] = #"Bearer realm="\#(realm)""# }
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try AnswerEncoding.encoder.encode(Body(error: reason)))))
    }
}
