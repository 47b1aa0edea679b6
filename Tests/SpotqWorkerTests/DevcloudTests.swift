import CurlClient
import Foundation
import Hummingbird
import Logging
import SpotqCore
import SpotqDevcloud
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

/// Runs a devcloud application on an ephemeral port for the duration of `body`.
func withDevcloud(_ register: @escaping @Sendable (Router<BasicRequestContext>) -> Void, _ body: @Sendable (_ base: String, _ client: HTTPClient) async throws -> Void) async throws {
    var logger = Logger(label: "spotq.test.devcloud")
    logger.logLevel = .critical
    let (ports, sink) = AsyncStream.makeStream(of: Int.self)
    let app = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: logger, register: register) { port in
        sink.yield(port)
        sink.finish()
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.run() }
        guard let port = await ports.first(where: { _ in true }), port > 0 else { throw TestEnvironmentError(description: "no port") }
        let result: Result<Void, any Error>
        do { result = .success(try await body("http://127.0.0.1:\(port)", try HTTPClient(configuration: CurlConfiguration(), logger: logger))) } catch { result = .failure(error) }
        group.cancelAll()
        try? await group.waitForAll()
        try result.get()
    }
}

@Suite("devcloud: model host")
struct DevcloudAssetServerTests {
    @Test func deterministicBytes_areTheSameAtAnyOffset_andDifferByName() {
        let file = DeterministicBytes(filename: "a.safetensors", size: 200_000)
        let whole = file.bytes(at: 0, count: 200_000)
        #expect(whole.count == 200_000)
        #expect(Array(whole[70_000 ..< 70_100]) == file.bytes(at: 70_000, count: 100))
        #expect(file.bytes(at: 199_990, count: 100).count == 10)
        #expect(DeterministicBytes(filename: "b.safetensors", size: 200_000).bytes(at: 0, count: 64) != Array(whole.prefix(64)))
        #expect(file.sha256() == DeterministicBytes(filename: "a.safetensors", size: 200_000).sha256())
    }

    @Test func files_downloadVerified_rangesWork_andFaultsAreServed() async throws {
        var configuration = DevcloudAssetServer.Configuration()
        configuration.catalog = ["base.safetensors": 3_000_000, "gone.safetensors": 10, "bad.safetensors": 100_000]
        configuration.missing = ["gone.safetensors"]
        configuration.corrupt = ["bad.safetensors"]
        let server = DevcloudAssetServer(configuration: configuration, logger: Logger(label: "t"))
        try await withDevcloud({ server.register(on: $0) }) { base, client in
            try await withTemporaryFolder { folder in
                let sha = DeterministicBytes(filename: "base.safetensors", size: 3_000_000).sha256()
                let result = try await client.download(base + "/models/base.safetensors", to: folder.appendingPathComponent("base.safetensors"), expectedSHA256: sha, expectedSize: 3_000_000)
                #expect(result.totalBytes == 3_000_000)

                let partial = try await client.send(CurlClient.HTTPRequest(url: base + "/models/base.safetensors", headers: ["Range": "bytes=100-199"]))
                #expect(partial.status == 206)
                #expect(partial.body == DeterministicBytes(filename: "base.safetensors", size: 3_000_000).bytes(at: 100, count: 100))
                #expect(partial.headers["Content-Range"] == "bytes 100-199/3000000")
                #expect(try await client.send(CurlClient.HTTPRequest(url: base + "/models/base.safetensors", headers: ["Range": "bytes=5000000-"])).status == 416)

                #expect(try await client.send(CurlClient.HTTPRequest(url: base + "/models/gone.safetensors")).status == 404)
                let badSHA = DeterministicBytes(filename: "bad.safetensors", size: 100_000).sha256()
                await #expect(throws: HTTPClientError.self) {
                    _ = try await client.download(base + "/models/bad.safetensors", to: folder.appendingPathComponent("bad.safetensors"), expectedSHA256: badSHA)
                }
            }
        }
    }
}

@Suite("devcloud: ComfyUI stand-in")
struct DevcloudComfyTests {
    static func workflow(_ checkpoint: String, lora: String? = nil, output: Bool = true, extraClass: String? = nil) -> [UInt8] {
        var request = TextToImageRequest(requestID: "w", checkpoint: checkpoint, loras: lora.map { [LoraUse(file: $0, strength: 1)] } ?? [], positive: "p")
        request.seed = 1234
        guard case .object(var nodes) = request.workflow() else { return [] }
        if !output { nodes.removeAll { $0.0 == "9" } }
        if let extraClass { nodes.append(("99", ["class_type": .string(extraClass), "inputs": [:]])) }
        return JSONValue.object([("prompt", .object(nodes)), ("client_id", "test")]).serialized()
    }

    @Test func aValidPrompt_runs_writesARealPNG_andInvalidOnesGetComfyUIsErrors() async throws {
        try await withTemporaryFolder { folder in
            let models = folder.appendingPathComponent("models")
            for sub in ["checkpoints", "loras"] { try FileManager.default.createDirectory(at: models.appendingPathComponent(sub), withIntermediateDirectories: true) }
            try Data([1]).write(to: models.appendingPathComponent("checkpoints/base.safetensors"))
            try Data([1]).write(to: models.appendingPathComponent("loras/style.safetensors"))
            try Data([1]).write(to: models.appendingPathComponent("checkpoints/half.safetensors.part"))
            var configuration = DevcloudComfy.Configuration(modelsDirectory: models, outputDirectory: folder.appendingPathComponent("output"))
            configuration.secondsPerImage = 0.2
            let comfy = DevcloudComfy(configuration: configuration, logger: Logger(label: "t"))
            try await withDevcloud({ comfy.register(on: $0) }) { base, client in
                let listed = try await client.send(CurlClient.HTTPRequest(url: base + "/models/checkpoints"))
                #expect(String(decoding: listed.body, as: UTF8.self) == #"["base.safetensors"]"#)

                let accepted = try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/prompt", body: Self.workflow("base.safetensors", lora: "style.safetensors")))
                #expect(accepted.status == 200)
                let id = try #require((try JSONSerialization.jsonObject(with: Data(accepted.body)) as? [String: Any])?["prompt_id"] as? String)
                let historyBody = try await eventually("the prompt's history") { () -> [UInt8]? in
                    let answer = try await client.send(CurlClient.HTTPRequest(url: base + "/history/\(id)"))
                    return answer.body != Array("{}".utf8) ? answer.body : nil
                }
                let history = try #require((try JSONSerialization.jsonObject(with: Data(historyBody)) as? [String: Any])?[id] as? [String: Any])
                #expect((history["status"] as? [String: Any])?["status_str"] as? String == "success")
                let image = try #require((((history["outputs"] as? [String: Any])?["9"] as? [String: Any])?["images"] as? [[String: Any]])?.first)
                let filename = try #require(image["filename"] as? String)
                #expect(filename == "spotq_00001_.png")
                let view = try await client.send(CurlClient.HTTPRequest(url: base + "/view?filename=\(filename)&subfolder=&type=output"))
                #expect(view.status == 200)
                #expect(ImageMagic.contentType(of: view.body) == "image/png")

                let missing = try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/api/prompt", body: Self.workflow("nope.safetensors")))
                #expect(missing.status == 400)
                let body = String(decoding: missing.body, as: UTF8.self)
                #expect(body.contains("value_not_in_list"))
                #expect(body.contains("ckpt_name: 'nope.safetensors' not in ['base.safetensors']"))
                #expect(body.contains("prompt_outputs_failed_validation"))
                // As real ComfyUI: the cause is only in node_errors, error.details is empty.
                let error = (try JSONSerialization.jsonObject(with: Data(missing.body)) as? [String: Any])?["error"] as? [String: Any]
                #expect(error?["details"] as? String == "")

                let noOutput = try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/prompt", body: Self.workflow("base.safetensors", output: false)))
                #expect(String(decoding: noOutput.body, as: UTF8.self).contains("prompt_no_outputs"))
                let unknown = try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/prompt", body: Self.workflow("base.safetensors", extraClass: "MysteryNode")))
                #expect(String(decoding: unknown.body, as: UTF8.self).contains("Cannot execute because node MysteryNode does not exist."))
                #expect(try await client.send(CurlClient.HTTPRequest(url: base + "/system_stats")).status == 200)
                #expect(try await client.send(CurlClient.HTTPRequest(url: base + "/view?filename=../etc/passwd")).status == 400)
            }
        }
    }
}

@Suite("devcloud ComfyUI: its queue, interrupt and restart, as real ComfyUI's")
struct DevcloudComfyQueueTests {
    @Test func aPendingPromptIsDeletedFromTheQueue_anInterruptByIdStopsOnlyThatPrompt_andARestartForgetsEverything() async throws {
        try await withTemporaryFolder { folder in
            let models = folder.appendingPathComponent("models")
            for sub in ["checkpoints", "loras"] { try FileManager.default.createDirectory(at: models.appendingPathComponent(sub), withIntermediateDirectories: true) }
            try Data([1]).write(to: models.appendingPathComponent("checkpoints/base.safetensors"))
            var configuration = DevcloudComfy.Configuration(modelsDirectory: models, outputDirectory: folder.appendingPathComponent("output"))
            configuration.secondsPerImage = 30
            let comfy = DevcloudComfy(configuration: configuration, logger: Logger(label: "t"))
            try await withDevcloud({ comfy.register(on: $0) }) { base, client in
                func submit() async throws -> String {
                    let answer = try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/prompt", body: DevcloudComfyTests.workflow("base.safetensors")))
                    return try #require((try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])?["prompt_id"] as? String)
                }
                @Sendable func queue() async throws -> (running: [String], pending: [String]) {
                    let answer = try await client.send(CurlClient.HTTPRequest(url: base + "/queue"))
                    let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])
                    func ids(_ key: String) -> [String] { ((object[key] as? [[Any]]) ?? []).compactMap { $0.count > 1 ? $0[1] as? String : nil } }
                    return (ids("queue_running"), ids("queue_pending"))
                }
                @Sendable func history(_ id: String) async throws -> String {
                    String(decoding: try await client.send(CurlClient.HTTPRequest(url: base + "/history/\(id)")).body, as: UTF8.self)
                }
                let first = try await submit()
                let second = try await submit()
                try await eventually("the first prompt running") { try await queue().running == [first] }
                #expect(try await queue().pending == [second])
                // Delete the pending one: gone from the queue, its history stays {}.
                let deleted = try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/queue", body: Array(#"{"delete": ["\#(second)"]}"#.utf8)))
                #expect(deleted.status == 200)
                #expect(try await queue().pending.isEmpty)
                // An interrupt naming another prompt does nothing; naming the running one stops it.
                _ = try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/interrupt", body: Array(#"{"prompt_id": "\#(second)"}"#.utf8)))
                #expect(try await queue().running == [first])
                _ = try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/interrupt", body: Array(#"{"prompt_id": "\#(first)"}"#.utf8)))
                try await eventually("the first prompt interrupted") { try await history(first).contains("execution_interrupted") }
                #expect(try await history(second) == "{}")
                // A restart: the running prompt and every history entry are gone for good.
                let third = try await submit()
                try await eventually("the third prompt running") { try await queue().running == [third] }
                await comfy.restart()
                let afterRestart = try await queue()
                #expect(afterRestart.running.isEmpty && afterRestart.pending.isEmpty)
                #expect(try await history(first) == "{}")
                #expect(try await history(third) == "{}")
            }
        }
    }
}

@Suite("devcloud: spot metadata")
struct DevcloudSpotTests {
    @Test func instanceAction_wantsAnIMDSv2Token_andIs404UntilATerminationIsAnnounced() async throws {
        let metadata = SpotMetadata()
        try await withDevcloud({ metadata.register(on: $0) }) { base, client in
            let action = base + "/latest/meta-data/spot/instance-action"
            #expect(try await client.send(CurlClient.HTTPRequest(url: action)).status == 401)
            #expect(try await client.send(CurlClient.HTTPRequest(method: .put, url: base + "/latest/api/token", body: [])).status == 400)
            let token = try await client.send(CurlClient.HTTPRequest(
                method: .put, url: base + "/latest/api/token", headers: ["X-aws-ec2-metadata-token-ttl-seconds": "60"], body: []))
            #expect(token.status == 200)
            let withToken: HTTPHeaders = ["X-aws-ec2-metadata-token": String(decoding: token.body, as: UTF8.self)]
            #expect(try await client.send(CurlClient.HTTPRequest(url: action, headers: withToken)).status == 404)
            #expect(try await client.send(CurlClient.HTTPRequest(method: .post, url: base + "/devcloud/spot/terminate?lead=30")).status == 200)
            let notice = try await client.send(CurlClient.HTTPRequest(url: action, headers: withToken))
            #expect(notice.status == 200)
            let text = String(decoding: notice.body, as: UTF8.self)
            #expect(text.contains(#""action": "terminate""#))
            let left = try #require(SpotNoticeTime.secondsLeft(in: text))
            #expect(left > 20 && left <= 30)
        }
    }
}

/// Reads the `time` of an instance-action answer as seconds from now.
enum SpotNoticeTime {
    static func secondsLeft(in text: String) -> Double? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
              let time = (object["time"] as? String).flatMap({ ISO8601DateFormatter().date(from: $0) })
        else { return nil }
        return time.timeIntervalSinceNow
    }
}

/// A temporary folder for one test.
func withTemporaryFolder(_ body: (URL) async throws -> Void) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_devcloud"))
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try await body(folder)
}
