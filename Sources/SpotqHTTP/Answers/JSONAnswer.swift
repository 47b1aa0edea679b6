import Foundation
import HTTPTypes
import Hummingbird

/// A Codable value answered as JSON with a status (keys sorted, dates ISO 8601), so no
/// route builds JSON by hand.
public struct JSONAnswer<Value: Encodable & Sendable>: ResponseGenerator, Sendable {
    public var status: HTTPResponse.Status
    public var value: Value
    public var headers: HTTPFields

    public init(_ value: Value, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) {
        self.status = status
        self.value = value
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try AnswerEncoding.encoder.encode(value))))
    }
}

/// How every spotq answer is encoded.
enum AnswerEncoding {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
