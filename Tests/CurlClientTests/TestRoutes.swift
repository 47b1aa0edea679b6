import Crypto
import Foundation
import Hummingbird

/// The test server's endpoints:
/// - `GET /files/{size}`: deterministic bytes; honours `Range: bytes=a-` / `a-b` with 206 and
///   `Content-Range`, 416 with `bytes */size` past the end; sends `Accept-Ranges: bytes`.
///   `?ignoreRange=1` answers 200 with the whole file whatever the Range.
///   `?cutOnce=<id>`: the first request with that id declares the full length but closes the
///   connection after half the body.
/// - `GET /trickle/{size}?chunk=&intervalMs=`: `chunk` bytes every `intervalMs` (slow peer).
/// - `GET /chunked/{size}`: the same bytes with no Content-Length.
/// - `GET /slow?delayMs=`: answers after a delay.
/// - `GET /status/{code}`: that status, with the request's query echoed in the body.
/// - `GET|POST|PUT /redirect?to=<url>`: 307 to `to`.
/// - `GET|POST|PUT|PATCH|DELETE /echo`: JSON ``EchoReply``.
/// - `POST|PUT /upload`: JSON ``UploadReply`` with the body's length and SHA-256.
enum TestRoutes {
    static func register(on router: Router<BasicRequestContext>, log: RequestLog) {
        router.middlewares.add(RecordingMiddleware(log: log))
        router.get("/files/:size") { request, context in
            try await file(request, context: context, log: log)
        }
        router.get("/trickle/:size") { request, context in
            let size = try context.parameters.require("size", as: Int.self)
            let chunk = request.uri.queryParameters.get("chunk", as: Int.self) ?? 1024
            let interval = request.uri.queryParameters.get("intervalMs", as: Int.self) ?? 50
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream"],
                body: ResponseBody(contentLength: size) { writer in
                    var sent = 0
                    while sent < size {
                        let next = min(size, sent + chunk)
                        try await writer.write(ByteBuffer(bytes: TestContent.bytes(sent..<next)))
                        sent = next
                        try await Task.sleep(for: .milliseconds(interval))
                    }
                    try await writer.finish(nil)
                })
        }
        router.get("/chunked/:size") { _, context in
            let size = try context.parameters.require("size", as: Int.self)
            return Response(
                status: .ok,
                body: ResponseBody { writer in
                    var sent = 0
                    while sent < size {
                        let next = min(size, sent + 1000)
                        try await writer.write(ByteBuffer(bytes: TestContent.bytes(sent..<next)))
                        sent = next
                    }
                    try await writer.finish(nil)
                })
        }
        router.get("/slow") { request, _ -> String in
            let delay = request.uri.queryParameters.get("delayMs", as: Int.self) ?? 2000
            try await Task.sleep(for: .milliseconds(delay))
            return "finally"
        }
        router.get("/status/:code") { request, context in
            let code = try context.parameters.require("code", as: Int.self)
            return Response(
                status: .init(code: code),
                body: ResponseBody(byteBuffer: ByteBuffer(string: "no luck for \(request.uri.query ?? "")")))
        }
        for method in [HTTPRequest.Method.get, .post, .put] {
            router.on("/redirect", method: method) { request, _ in
                let target = request.uri.queryParameters.get("to").map { String($0) } ?? "/"
                return Response(status: .temporaryRedirect, headers: [.location: target])
            }
        }
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("/echo", method: method) { request, _ in try await echo(request) }
        }
        for method in [HTTPRequest.Method.post, .put] {
            router.on("/upload", method: method) { request, _ in try await upload(request) }
        }
    }

    private static func file(_ request: Request, context: BasicRequestContext, log: RequestLog) async throws -> Response {
        let size = try context.parameters.require("size", as: Int.self)
        var headers: HTTPFields = [.acceptRanges: "bytes", .contentType: "application/octet-stream"]
        var status = HTTPResponse.Status.ok
        var range = 0..<size
        if request.uri.queryParameters.get("ignoreRange") == nil, let header = request.headers[.range] {
            guard let requested = parseRange(header, size: size) else {
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            range = requested
            status = .partialContent
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
        }
        var cutAfter: Int?
        if let id = request.uri.queryParameters.get("cutOnce"), await log.shouldCutOff(String(id)) {
            cutAfter = range.count / 2
        }
        let body = range
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: body.count) { [cutAfter] writer in
                var position = body.lowerBound
                let stop = cutAfter.map { body.lowerBound + $0 } ?? body.upperBound
                while position < stop {
                    let next = min(stop, position + 16 * 1024)
                    try await writer.write(ByteBuffer(bytes: TestContent.bytes(position..<next)))
                    position = next
                }
                if cutAfter != nil {
                    // Let the half already written reach the socket, then drop the connection
                    // mid-body: throwing from the body writer makes Hummingbird close it.
                    try await Task.sleep(for: .milliseconds(100))
                    throw TestServerError(description: "cut off on purpose")
                }
                try await writer.finish(nil)
            })
    }

    /// `bytes=a-` or `bytes=a-b` within `size`; nil when unsatisfiable.
    private static func parseRange(_ header: String, size: Int) -> Range<Int>? {
        guard header.hasPrefix("bytes=") else { return nil }
        let bounds = header.dropFirst("bytes=".count).split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = Int(bounds[0]), first < size else { return nil }
        let last = bounds[1].isEmpty ? size - 1 : min(Int(bounds[1]) ?? (size - 1), size - 1)
        guard first <= last else { return nil }
        return first..<(last + 1)
    }

    private static func echo(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 1 << 20)
        let reply = EchoReply(
            method: request.method.rawValue,
            headers: request.headers.map { [$0.name.rawName, $0.value] },
            body: String(buffer: body))
        let data = try JSONEncoder().encode(reply)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private static func upload(_ request: Request) async throws -> Response {
        var hasher = SHA256()
        var length = 0
        for try await buffer in request.body {
            buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            length += buffer.readableBytes
        }
        let reply = UploadReply(
            length: length, sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(),
            contentType: request.headers[.contentType], method: request.method.rawValue)
        let data = try JSONEncoder().encode(reply)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Records every request in the ``RequestLog`` before routing it.
struct RecordingMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let log: RequestLog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        await log.record(.init(
            method: request.method.rawValue, path: request.uri.path,
            range: request.headers[.range], authorization: request.headers[.authorization]))
        return try await next(request, context)
    }
}
