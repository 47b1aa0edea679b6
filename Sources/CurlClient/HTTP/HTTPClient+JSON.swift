import Foundation

extension HTTPRequest {
    /// A request whose body is `body` encoded as JSON, with `Content-Type: application/json`
    /// and `Accept: application/json` (unless `headers` already sets them).
    public static func json(
        _ method: HTTPMethod,
        _ url: String,
        body: some Encodable,
        headers: HTTPHeaders = [:],
        timeout: Duration? = nil,
        encoder: JSONEncoder = JSONEncoder()
    ) throws(HTTPClientError) -> HTTPRequest {
        let data: Data
        do {
            data = try encoder.encode(body)
        } catch {
            throw HTTPClientError(
                code: .coding, message: "cannot encode the \(type(of: body)) request body as JSON: \(error)",
                url: Redaction.redactedURL(url))
        }
        var headers = headers
        if !headers.contains("Content-Type") { headers["Content-Type"] = "application/json" }
        if !headers.contains("Accept") { headers["Accept"] = "application/json" }
        return HTTPRequest(method: method, url: url, headers: headers, body: [UInt8](data), timeout: timeout)
    }
}

extension HTTPResponse {
    /// The body decoded from JSON, whatever the status (see ``HTTPClient/sendJSON(_:decoding:decoder:)``
    /// for the usual "2xx or throw" path).
    public func decode<Value: Decodable>(
        _ type: Value.Type = Value.self, decoder: JSONDecoder = JSONDecoder()
    ) throws(HTTPClientError) -> Value {
        do {
            return try decoder.decode(Value.self, from: Data(body))
        } catch {
            // DecodingError names keys and types, never the values, so it is safe to show.
            throw HTTPClientError(
                code: .coding, message: "cannot decode the response as \(Value.self): \(error)",
                url: Redaction.redactedURL(effectiveURL), httpStatus: status)
        }
    }
}

extension HTTPClient {
    /// Sends `request`, requires a `2xx` (else throws ``HTTPClientError/Code/httpStatus``
    /// with the start of the body), and decodes the body as `Value`.
    public func sendJSON<Value: Decodable>(
        _ request: HTTPRequest, decoding type: Value.Type = Value.self, decoder: JSONDecoder = JSONDecoder()
    ) async throws -> Value {
        var request = request
        if !request.headers.contains("Accept") { request.headers["Accept"] = "application/json" }
        return try await send(request).requireSuccess().decode(Value.self, decoder: decoder)
    }
}
