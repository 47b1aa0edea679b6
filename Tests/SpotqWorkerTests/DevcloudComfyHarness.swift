import CurlClient
import Foundation
import Logging
import SpotqCore
@testable import SpotqDevcloud
import SpotqSynthetic
import SpotqTestSupport
import Testing

/// A ComfyUI stand-in in a temporary ComfyUI folder (`models/checkpoints/base.safetensors`,
/// `models/loras/style.safetensors`), on an ephemeral port, for one test.
func withStrictComfy(_ body: @Sendable (_ comfy: ComfyHarness) async throws -> Void) async throws {
    try await withStrictComfy(secondsPerImage: 0.1, configure: { _ in }, body)
}

func withStrictComfy(
    secondsPerImage: Double = 0.1, configure: (inout DevcloudComfy.Configuration) -> Void,
    _ body: @Sendable (_ comfy: ComfyHarness) async throws -> Void
) async throws {
    try await withTemporaryFolder { folder in
        let models = folder.appendingPathComponent("models")
        for sub in ["checkpoints", "loras"] { try FileManager.default.createDirectory(at: models.appendingPathComponent(sub), withIntermediateDirectories: true) }
        try Data([1]).write(to: models.appendingPathComponent("checkpoints/base.safetensors"))
        try Data([1]).write(to: models.appendingPathComponent("loras/style.safetensors"))
        var configuration = DevcloudComfy.Configuration(modelsDirectory: models, outputDirectory: folder.appendingPathComponent("output"))
        configuration.secondsPerImage = secondsPerImage
        configure(&configuration)
        let comfy = DevcloudComfy(configuration: configuration, logger: Logger(label: "t"))
        try await withDevcloud({ comfy.register(on: $0) }) { base, client in
            try await body(ComfyHarness(base: base, client: client, comfy: comfy, folder: folder))
        }
    }
}

struct ComfyHarness: Sendable {
    let base: String
    let client: HTTPClient
    let comfy: DevcloudComfy
    let folder: URL

    /// The worker's request body around `nodes`.
    static func body(_ nodes: [(String, JSONValue)], id: String = UUID().uuidString.lowercased(), extra: [(String, JSONValue)] = []) -> [UInt8] {
        JSONValue.object([("prompt", .object(nodes)), ("client_id", "spotq-worker"), ("prompt_id", .string(id))] + extra).serialized()
    }

    static func standard(checkpoint: String = "base.safetensors", loras: [String] = [], prefix: String = "spotq", edit: (inout TextToImageRequest) -> Void = { _ in }) -> [(String, JSONValue)] {
        var request = TextToImageRequest(requestID: "r", checkpoint: checkpoint, loras: loras.map { LoraUse(file: $0, strength: 0.8) }, positive: "a lighthouse")
        request.seed = 1234
        edit(&request)
        guard case .object(var nodes) = request.workflow() else { return [] }
        if prefix != "spotq", let at = nodes.firstIndex(where: { $0.0 == "9" }) {
            nodes[at].1 = ["class_type": "SaveImage", "inputs": ["filename_prefix": .string(prefix), "images": ["8", 0]]]
        }
        return nodes
    }

    /// EmptyImage → ImageBlur → SaveImage: needs no model at all.
    static func modelFree(prefix: String = "smoke", first: Int = 20) -> [(String, JSONValue)] {
        [
            (String(first), ["class_type": "EmptyImage", "inputs": ["width": 64, "height": 32, "batch_size": 1, "color": 16711680]]),
            (String(first + 1), ["class_type": "ImageBlur", "inputs": ["image": [.string(String(first)), 0], "blur_radius": 3, "sigma": 1.5]]),
            (String(first + 2), ["class_type": "SaveImage", "inputs": ["filename_prefix": .string(prefix), "images": [.string(String(first + 1)), 0]]]),
        ]
    }

    /// `nodes` with one input of one node replaced.
    static func setting(_ nodes: [(String, JSONValue)], node: String, input: String, to value: JSONValue) throws -> [(String, JSONValue)] {
        var nodes = nodes
        let at = try #require(nodes.firstIndex { $0.0 == node })
        guard case .object(var fields) = nodes[at].1, let inputsAt = fields.firstIndex(where: { $0.0 == "inputs" }), case .object(var inputs) = fields[inputsAt].1 else {
            throw TestEnvironmentError(description: "node \(node) has no inputs")
        }
        if let slot = inputs.firstIndex(where: { $0.0 == input }) { inputs[slot].1 = value } else { inputs.append((input, value)) }
        fields[inputsAt].1 = .object(inputs)
        nodes[at].1 = .object(fields)
        return nodes
    }

    func post(_ path: String, _ body: [UInt8]) async throws -> CurlClient.HTTPResponse {
        try await client.send(CurlClient.HTTPRequest(method: .post, url: base + path, headers: ["Content-Type": "application/json"], body: body))
    }

    func get(_ path: String) async throws -> CurlClient.HTTPResponse {
        try await client.send(CurlClient.HTTPRequest(url: base + path))
    }

    static func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    /// Posts `nodes` and returns the status and parsed answer.
    func submit(_ nodes: [(String, JSONValue)], id: String = UUID().uuidString.lowercased(), extra: [(String, JSONValue)] = []) async throws -> (Int, [String: Any]) {
        let answer = try await post("/prompt", Self.body(nodes, id: id, extra: extra))
        return (answer.status, try Self.object(answer.body))
    }

    /// The prompt's history entry, once it has one.
    func finished(_ id: String) async throws -> [String: Any] {
        let body = try await eventually("the history of \(id)", timeout: .seconds(30)) { () -> [UInt8]? in
            let answer = try await get("/history/\(id)")
            return answer.body != Array("{}".utf8) ? answer.body : nil
        }
        return try #require(try Self.object(body)[id] as? [String: Any])
    }

    func queue() async throws -> (running: [String], pending: [String]) {
        let object = try Self.object(try await get("/queue").body)
        func ids(_ key: String) -> [String] { ((object[key] as? [[Any]]) ?? []).compactMap { $0.count > 1 ? $0[1] as? String : nil } }
        return (ids("queue_running"), ids("queue_pending"))
    }
}

extension Dictionary where Key == String, Value == Any {
    func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
}

/// A temporary folder for a synchronous test.
func withTemporaryFolderSync(_ body: (URL) throws -> Void) throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_devcloud"))
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try body(folder)
}
