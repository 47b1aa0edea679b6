import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import SpotqPod
import Synchronization

/// What a new pod fetches before anything else, on the pod listener and without a token
/// (nothing in them is secret; the pod checks both against hashes the provisioner pinned):
/// - `GET /v1/pod/bootstrap.sh`: the bootstrap script built into this spotq;
/// - `GET /v1/pod/spotq`: the spotq binary for pods (SPOTQ_POD_BINARY, else this executable);
/// - `GET /v1/pod/manifest`: both SHA-256s and the binary's size, for operators.
public struct PodSoftwareRoutes: Sendable {
    public let binaryPath: String
    private let binaryHash = BinaryHash()

    public init(binaryPath: String) {
        self.binaryPath = binaryPath
    }

    public func register(on router: Router<some RequestContext>) {
        router.get("/v1/pod/bootstrap.sh") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/x-shellscript; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: PodSoftware.bootstrapScript)))
        }
        router.get("/v1/pod/spotq") { _, context in
            let size = try Self.size(of: binaryPath)
            let body = try await FileIO().loadFile(path: binaryPath, context: context)
            return Response(status: .ok, headers: [.contentType: "application/octet-stream", .contentLength: "\(size)"], body: body)
        }
        router.get("/v1/pod/manifest") { _, _ in
            // Read on NIO's blocking pool, not on Swift's cooperative threads.
            let hash = try await NIOThreadPool.singleton.runIfActive { try binaryHash.value(of: binaryPath) }
            let text = #"{"bootstrap_sha256": "\#(PodSoftware.bootstrapSHA256)", "binary_sha256": "\#(hash)", "binary_bytes": \#(try Self.size(of: binaryPath))}"#
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
    }

    static func size(of path: String) throws -> Int {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
            throw SpotqHTTPError(.internalServerError, "the pod binary \(path) cannot be read")
        }
        return size
    }
}

/// The binary's SHA-256, computed once on first use (hashing 100 MB on every request would
/// be a way to keep the server busy).
final class BinaryHash: Sendable {
    private let cached = Mutex<String?>(nil)

    func value(of path: String) throws -> String {
        if let hash = cached.withLock({ $0 }) { return hash }
        let hash = try PodSoftware.sha256(ofFile: path)
        cached.withLock { $0 = hash }
        return hash
    }
}
