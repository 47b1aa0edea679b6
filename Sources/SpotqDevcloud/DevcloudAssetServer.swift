import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SpotqCore
import SpotqSynthetic

/// `spotq devcloud assets`: a model host. Serves `GET /models/{filename}` for the files of
/// its catalog with deterministic bytes of the registered size (``DeterministicBytes``),
/// Range requests (206, 416), and a bandwidth cap, like a CDN seen from a pod. Files it is
/// told to break answer 404 or serve wrong bytes, for the fault tests.
public struct DevcloudAssetServer: Sendable {
    public struct Configuration: Sendable {
        /// File name → size in bytes.
        public var catalog: [String: Int64] = [:]
        /// Per-connection cap in bytes per second; 0 is unlimited.
        public var bytesPerSecond: Int = 0
        /// Files that answer 404 though listed.
        public var missing: Set<String> = []
        /// Files served with one byte changed, so their SHA-256 does not match.
        public var corrupt: Set<String> = []

        public init() {}
    }

    public let configuration: Configuration
    public let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/models/:filename") { request, context in
            try serve(request, context, includeBody: true)
        }
        router.head("/models/:filename") { request, context in
            try serve(request, context, includeBody: false)
        }
    }

    func serve(_ request: Request, _ context: BasicRequestContext, includeBody: Bool) throws -> Response {
        guard let name = context.parameters.get("filename"), let size = configuration.catalog[name], !configuration.missing.contains(name) else {
            return Response(status: .notFound, body: ResponseBody(byteBuffer: ByteBuffer(string: "no such model\n")))
        }
        var start: Int64 = 0
        var end = size - 1
        var status = HTTPResponse.Status.ok
        if let range = request.headers[.range] {
            guard let parsed = Self.parseRange(range, size: size) else {
                return Response(status: .rangeNotSatisfiable, headers: [.contentRange: "bytes */\(size)"])
            }
            (start, end) = parsed
            status = .partialContent
        }
        var headers: HTTPFields = [
            .contentType: "application/octet-stream", .acceptRanges: "bytes", .contentLength: String(end - start + 1),
        ]
        if status == .partialContent { headers[.contentRange] = "bytes \(start)-\(end)/\(size)" }
        guard includeBody else { return Response(status: status, headers: headers) }
        let (first, last) = (start, end)
        let file = DeterministicBytes(filename: name, size: size)
        let corrupt = configuration.corrupt.contains(name)
        let rate = configuration.bytesPerSecond
        let body = ResponseBody { writer in
            var offset = first
            let chunk = rate > 0 ? max(1_024, min(DeterministicBytes.blockSize, rate / 20)) : DeterministicBytes.blockSize
            let started = ContinuousClock.now
            while offset <= last {
                var bytes = file.bytes(at: offset, count: Int(min(Int64(chunk), last - offset + 1)))
                if corrupt && offset == 0, !bytes.isEmpty { bytes[0] ^= 0xFF }  // byte 0 of the file, however it is fetched
                try await writer.write(ByteBuffer(bytes: bytes))
                offset += Int64(bytes.count)
                if rate > 0 {
                    // Sleep until the average rate since the start is back under the cap.
                    let due = Duration.seconds(Double(offset - first) / Double(rate))
                    let elapsed = ContinuousClock.now - started
                    if due > elapsed { try await Task.sleep(for: due - elapsed) }
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range); nil when unsatisfiable or malformed.
    static func parseRange(_ header: String, size: Int64) -> (Int64, Int64)? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        if parts[0].isEmpty {
            guard let suffix = Int64(parts[1]), suffix > 0 else { return nil }
            return (max(0, size - suffix), size - 1)
        }
        guard let start = Int64(parts[0]), start < size else { return nil }
        let end = parts[1].isEmpty ? size - 1 : min(size - 1, Int64(parts[1]) ?? -1)
        return end >= start ? (start, end) : nil
    }
}

/// An AWS-style spot metadata endpoint (IMDSv2) that can be told to announce a termination:
/// `PUT /latest/api/token` hands out a session token, `GET
/// /latest/meta-data/spot/instance-action` wants it (401 without) and answers 404 until
/// `POST /devcloud/spot/terminate[?lead=SECONDS]` (or ``announceTermination(lead:)``).
public actor SpotMetadata {
    private var noticeTime: Date?
    private var tokens: Set<String> = []
    /// GETs answered so far (tests check the worker polls).
    public private(set) var polls = 0

    public init() {}

    /// From now on `instance-action` answers `terminate` at `now + lead`.
    public func announceTermination(lead: TimeInterval = 120) {
        noticeTime = Date().addingTimeInterval(lead)
    }

    public func clear() { noticeTime = nil }

    private func issueToken() -> String {
        let token = UUID().uuidString
        tokens.insert(token)
        return token
    }

    private func answer(token: String?) -> Response {
        polls += 1
        guard let token, tokens.contains(token) else { return Response(status: .unauthorized) }
        guard let time = noticeTime else { return Response(status: .notFound) }
        let text = #"{"action": "terminate", "time": "\#(ISO8601DateFormatter().string(from: time))"}"#
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    public nonisolated func register(on router: Router<BasicRequestContext>) {
        router.put("/latest/api/token") { request, _ in
            guard let ttl = request.headers[HTTPField.Name("X-aws-ec2-metadata-token-ttl-seconds")!].flatMap(Int.init), (1...21_600).contains(ttl) else {
                return Response(status: .badRequest)
            }
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: await self.issueToken())))
        }
        router.get("/latest/meta-data/spot/instance-action") { request, _ in
            await self.answer(token: request.headers[HTTPField.Name("X-aws-ec2-metadata-token")!])
        }
        router.post("/devcloud/spot/terminate") { request, _ in
            let lead = request.uri.queryParameters.get("lead").flatMap(TimeInterval.init) ?? 120
            await self.announceTermination(lead: lead)
            return Response(status: .ok)
        }
    }
}
