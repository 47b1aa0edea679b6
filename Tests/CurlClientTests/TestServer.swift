import Crypto
import Foundation
import Hummingbird
import Logging

/// A real HTTP server on 127.0.0.1 and an ephemeral port, for one test. See ``TestRoutes``
/// for what it serves and ``RequestLog`` for what it saw.
struct TestServer: Sendable {
    let port: Int
    let log: RequestLog

    var baseURL: String { "http://127.0.0.1:\(port)" }

    func url(_ pathAndQuery: String) -> String { baseURL + pathAndQuery }

    /// Starts a server, runs `body` against it, then shuts the server down.
    static func run<T: Sendable>(_ body: @Sendable (TestServer) async throws -> T) async throws -> T {
        let log = RequestLog()
        let router = Router()
        TestRoutes.register(on: router, log: log)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        var serverLogger = Logger(label: "curl-client-test-server")
        serverLogger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: serverLogger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            guard let port = await ports.first(where: { _ in true }), port > 0 else {
                group.cancelAll()
                throw TestServerError(description: "the test server did not report a port")
            }
            let result: Result<T, any Error>
            do {
                result = .success(try await body(TestServer(port: port, log: log)))
            } catch {
                result = .failure(error)
            }
            group.cancelAll()
            try? await group.waitForAll()
            return try result.get()
        }
    }
}

struct TestServerError: Error, CustomStringConvertible {
    let description: String
}

/// What the server saw, for assertions: one entry per request, in arrival order.
actor RequestLog {
    struct Entry: Sendable {
        var method: String
        var path: String
        var range: String?
        var authorization: String?
    }

    private(set) var entries: [Entry] = []
    private var cutOffIDs: Set<String> = []

    func record(_ entry: Entry) { entries.append(entry) }

    func entries(forPath path: String) -> [Entry] { entries.filter { $0.path == path } }

    /// True the first time `id` is seen: that request gets cut off.
    func shouldCutOff(_ id: String) -> Bool { cutOffIDs.insert(id).inserted }
}

/// The deterministic content of `/files/<size>`: byte `i` depends only on `i`.
enum TestContent {
    static func byte(at index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (index &* 7919) ^ (index >> 8) ^ (index >> 16))
    }

    static func bytes(_ range: Range<Int>) -> [UInt8] { range.map(byte(at:)) }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    static func sha256Hex(size: Int) -> String { sha256Hex(bytes(0..<size)) }
}

/// What `/echo` answers: the request as the server saw it.
struct EchoReply: Codable, Sendable {
    var method: String
    var headers: [[String]]
    var body: String

    func values(of name: String) -> [String] {
        headers.filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }
}

/// What `/upload` answers.
struct UploadReply: Codable, Sendable {
    var length: Int
    var sha256: String
    var contentType: String?
    var method: String
}
