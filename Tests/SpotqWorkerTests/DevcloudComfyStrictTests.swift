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

@Suite("devcloud ComfyUI refuses prompts as ComfyUI 0.3.64 does")
struct DevcloudComfyRefusalTests {
    /// The one node error of a 400, after checking the envelope real ComfyUI sends.
    static func nodeError(_ answer: (Int, [String: Any]), node: String) throws -> (error: [String: Any], entry: [String: Any]) {
        #expect(answer.0 == 400)
        let error = try #require(answer.1.object("error"))
        #expect(error["type"] as? String == "prompt_outputs_failed_validation")
        #expect(error["message"] as? String == "Prompt outputs failed validation")
        #expect(error["details"] as? String == "")
        #expect((error["extra_info"] as? [String: Any])?.isEmpty == true)
        let entry = try #require(answer.1.object("node_errors")?.object(node))
        #expect(entry["dependent_outputs"] as? [String] == ["9"])
        return (try #require((entry["errors"] as? [[String: Any]])?.first), entry)
    }

    @Test func aMissingCheckpoint_isValueNotInList_listingTheCheckpoints_onTheLoaderNode() async throws {
        try await withStrictComfy { comfy in
            let (error, entry) = try Self.nodeError(try await comfy.submit(ComfyHarness.standard(checkpoint: "missing.safetensors")), node: "4")
            #expect(entry["class_type"] as? String == "CheckpointLoaderSimple")
            #expect(error["type"] as? String == "value_not_in_list")
            #expect(error["message"] as? String == "Value not in list")
            #expect(error["details"] as? String == "ckpt_name: 'missing.safetensors' not in ['base.safetensors']")
            let extra = try #require(error["extra_info"] as? [String: Any])
            #expect(extra["input_name"] as? String == "ckpt_name")
            #expect(extra["received_value"] as? String == "missing.safetensors")
            let config = try #require(extra["input_config"] as? [Any])
            #expect(config.first as? [String] == ["base.safetensors"])
            #expect((config.last as? [String: Any])?["tooltip"] as? String == "The name of the checkpoint (model) to load.")
        }
    }

    @Test func aMissingLora_isValueNotInList_onTheLoraLoader() async throws {
        try await withStrictComfy { comfy in
            try FileManager.default.removeItem(at: comfy.folder.appendingPathComponent("models/loras/style.safetensors"))
            let (error, entry) = try Self.nodeError(try await comfy.submit(ComfyHarness.standard(loras: ["x.safetensors"])), node: "10")
            #expect(entry["class_type"] as? String == "LoraLoader")
            #expect(error["details"] as? String == "lora_name: 'x.safetensors' not in []")
        }
    }

    @Test func anUnknownSampler_isNotInTheListOf42_withoutInputConfig() async throws {
        try await withStrictComfy { comfy in
            let (error, _) = try Self.nodeError(try await comfy.submit(ComfyHarness.standard { $0.samplerName = "euler_a" }), node: "3")
            #expect(error["details"] as? String == "sampler_name: 'euler_a' not in (list of length 42)")
            let extra = try #require(error["extra_info"] as? [String: Any])
            #expect(extra["input_config"] is NSNull)
            let (scheduler, _) = try Self.nodeError(try await comfy.submit(ComfyHarness.standard { $0.scheduler = "fast" }), node: "3")
            #expect(scheduler["details"] as? String == "scheduler: 'fast' not in ['simple', 'sgm_uniform', 'karras', 'exponential', 'ddim_uniform', 'beta', 'normal', 'linear_quadratic', 'kl_optimal']")
        }
    }

    @Test func zeroSteps_isSmallerThanMin() async throws {
        try await withStrictComfy { comfy in
            let (error, _) = try Self.nodeError(try await comfy.submit(ComfyHarness.standard { $0.steps = 0 }), node: "3")
            #expect(error["type"] as? String == "value_smaller_than_min")
            #expect(error["message"] as? String == "Value 0 smaller than min of 1")
            #expect(error["details"] as? String == "steps")
            #expect((error["extra_info"] as? [String: Any])?["received_value"] as? Int == 0)
        }
    }

    @Test func aMissingWidth_isRequiredInputMissing() async throws {
        try await withStrictComfy { comfy in
            var nodes = ComfyHarness.standard()
            let at = try #require(nodes.firstIndex { $0.0 == "5" })
            nodes[at].1 = ["class_type": "EmptyLatentImage", "inputs": ["height": 1024, "batch_size": 1]]
            let (error, entry) = try Self.nodeError(try await comfy.submit(nodes), node: "5")
            #expect(entry["class_type"] as? String == "EmptyLatentImage")
            #expect(error["type"] as? String == "required_input_missing")
            #expect(error["details"] as? String == "width")
        }
    }

    @Test func aLinkToANodeThatDoesNotExist_isAnExceptionDuringInnerValidation() async throws {
        try await withStrictComfy { comfy in
            let nodes = try ComfyHarness.setting(ComfyHarness.standard(), node: "3", input: "model", to: ["99", 0])
            let (error, _) = try Self.nodeError(try await comfy.submit(nodes), node: "3")
            #expect(error["type"] as? String == "exception_during_inner_validation")
            #expect(error["details"] as? String == "'99'")
            #expect((error["extra_info"] as? [String: Any])?["exception_type"] as? String == "KeyError")
        }
    }

    @Test func anUnknownClass_andAMissingClassType_areInvalidPrompts_namingTheNode() async throws {
        try await withStrictComfy { comfy in
            var nodes = ComfyHarness.standard()
            let at = try #require(nodes.firstIndex { $0.0 == "3" })
            nodes[at].1 = ["class_type": "KSamplerFancy", "inputs": [:]]
            let unknown = try await comfy.submit(nodes)
            #expect(unknown.0 == 400)
            #expect(unknown.1.object("error")?["type"] as? String == "invalid_prompt")
            #expect(unknown.1.object("error")?["message"] as? String == "Cannot execute because node KSamplerFancy does not exist.")
            #expect(unknown.1.object("error")?["details"] as? String == "Node ID '#3'")
            #expect(unknown.1.object("node_errors")?.isEmpty == true)

            var noClass = ComfyHarness.standard()
            let six = try #require(noClass.firstIndex { $0.0 == "6" })
            noClass[six].1 = ["inputs": ["text": "x", "clip": ["4", 1]]]
            let missing = try await comfy.submit(noClass)
            #expect(missing.0 == 400)
            #expect(missing.1.object("error")?["type"] as? String == "invalid_prompt")
            #expect(missing.1.object("error")?["details"] as? String == "Node ID '#6'")
        }
    }

    @Test func noOutputNode_isPromptNoOutputs_withNodeErrorsAnObject() async throws {
        try await withStrictComfy { comfy in
            let answer = try await comfy.post("/prompt", ComfyHarness.body(ComfyHarness.standard().filter { $0.0 != "9" }))
            #expect(answer.status == 400)
            let text = String(decoding: answer.body, as: UTF8.self)
            #expect(text.contains(#""type": "prompt_no_outputs""#))
            #expect(text.hasSuffix(#""node_errors": {}}"#))
        }
    }

    @Test func noPromptKey_isNoPrompt_withItsDetails() async throws {
        try await withStrictComfy { comfy in
            let answer = try await comfy.post("/prompt", Array(#"{"client_id": "spotq-worker"}"#.utf8))
            #expect(answer.status == 400)
            #expect(String(decoding: answer.body, as: UTF8.self)
                == #"{"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}"#)
        }
    }

    @Test(arguments: [
        #"{"prompt": {"4": 5}}"#, #"{"prompt": {"4": null}}"#, #"{"prompt": [{"class_type": "SaveImage"}]}"#, #"{"prompt": {"#,
    ])
    func bodiesThatCrashComfyUI_are500PlainText(body: String) async throws {
        try await withStrictComfy { comfy in
            let answer = try await comfy.post("/prompt", Array(body.utf8))
            #expect(answer.status == 500)
            #expect(answer.headers["Content-Type"]?.hasPrefix("text/plain") == true)
            #expect(String(decoding: answer.body, as: UTF8.self) == "500 Internal Server Error\n\nServer got itself in trouble")
        }
    }

    @Test func numbers_countFromZero_includingRefusedPrompts() async throws {
        try await withStrictComfy { comfy in
            #expect(try await comfy.submit(ComfyHarness.standard()).1["number"] as? Int == 0)
            _ = try await comfy.submit(ComfyHarness.standard(checkpoint: "missing.safetensors"))
            #expect(try await comfy.submit(ComfyHarness.standard()).1["number"] as? Int == 2)
        }
    }
}

@Suite("devcloud ComfyUI runs prompts as ComfyUI 0.3.64 does")
struct DevcloudComfyRunTests {
    @Test func aPartlyValidPrompt_isAccepted_withNodeErrors_andOnlyTheValidOutputRuns() async throws {
        try await withStrictComfy { comfy in
            let id = "partly"
            let (status, answer) = try await comfy.submit(ComfyHarness.standard(checkpoint: "missing.safetensors") + ComfyHarness.modelFree(), id: id)
            #expect(status == 200)
            #expect(answer["prompt_id"] as? String == id)
            #expect(answer.object("node_errors")?.object("4")?["class_type"] as? String == "CheckpointLoaderSimple")
            let history = try await comfy.finished(id)
            let outputs = try #require(history.object("outputs"))
            #expect(Array(outputs.keys) == ["22"])
            let files = try FileManager.default.contentsOfDirectory(atPath: comfy.folder.appendingPathComponent("output").path).filter { $0.hasSuffix(".png") }
            #expect(files == ["smoke_00001_.png"])
        }
    }

    @Test func theWorkflowsSpotqSends_areAccepted_andRun() async throws {
        try await withStrictComfy { comfy in
            // The worker's (TextToImageRequest, with LoRAs), scripts/clients/enqueue_with_pika.py's shape, and a model-free graph.
            for nodes in [ComfyHarness.standard(loras: ["style.safetensors"]), ComfyHarness.standard(), ComfyHarness.modelFree()] {
                let id = UUID().uuidString.lowercased()
                let (status, answer) = try await comfy.submit(nodes, id: id)
                #expect(status == 200, "\(answer)")
                #expect(answer.object("node_errors")?.isEmpty == true)
                #expect(try await comfy.finished(id).object("status")?["status_str"] as? String == "success")
            }
        }
    }

    @Test func aFilenamePrefixWithFolders_savesInThatSubfolder_andViewServesIt() async throws {
        try await withStrictComfy { comfy in
            for (seed, expected) in [(1 as UInt64, "item_00001_.png"), (2, "item_00002_.png")] {
                let id = UUID().uuidString.lowercased()
                _ = try await comfy.submit(ComfyHarness.standard(prefix: "spotq/batch7/item") { $0.seed = seed }, id: id)
                let image = try #require((try await comfy.finished(id).object("outputs")?.object("9")?["images"] as? [[String: Any]])?.first)
                #expect(image["filename"] as? String == expected)
                #expect(image["subfolder"] as? String == "spotq/batch7")
                #expect(image["type"] as? String == "output")
            }
            let view = try await comfy.get("/view?filename=item_00002_.png&subfolder=spotq%2Fbatch7&type=output")
            #expect(view.status == 200)
            #expect(view.headers["Content-Type"] == "image/png")
        }
    }

    @Test func theSameGraphAgain_isServedFromCache_writingNoFile_andARepeatedIdKeepsItsOldHistoryWhileItRuns() async throws {
        try await withStrictComfy { comfy in
            _ = try await comfy.submit(ComfyHarness.standard(), id: "first")
            let first = try await comfy.finished("first")
            _ = try await comfy.submit(ComfyHarness.standard(), id: "again")
            let again = try await comfy.finished("again")
            let cached = try #require((again.object("status")?["messages"] as? [[Any]])?.first { $0.first as? String == "execution_cached" }?.last as? [String: Any])
            #expect(Set(cached["nodes"] as? [String] ?? []) == ["3", "4", "5", "6", "7", "8", "9"])
            func filename(_ entry: [String: Any]) -> String? { (entry.object("outputs")?.object("9")?["images"] as? [[String: Any]])?.first?["filename"] as? String }
            #expect(filename(again) == "spotq_00001_.png")
            #expect(filename(again) == filename(first))
            let files = try FileManager.default.contentsOfDirectory(atPath: comfy.folder.appendingPathComponent("output").path).filter { $0.hasSuffix(".png") }
            #expect(files == ["spotq_00001_.png"])

            // The same id with another seed runs again; until it ends, its old entry is served.
            await comfy.comfy.setSecondsPerImage(30)
            _ = try await comfy.submit(ComfyHarness.standard { $0.seed = 99 }, id: "first")
            try await eventually("the repeated id running") { try await comfy.queue().running == ["first"] }
            let during = try ComfyHarness.object(try await comfy.get("/history/first").body)
            #expect(during.object("first")?.object("status")?["status_str"] as? String == "success")
            await comfy.comfy.interrupt()
        }
    }

    @Test func withCachingOff_theSameGraphRunsAgain() async throws {
        try await withStrictComfy(configure: { $0.cacheOutputs = false }) { comfy in
            for id in ["a", "b"] {
                _ = try await comfy.submit(ComfyHarness.modelFree(), id: id)
                _ = try await comfy.finished(id)
            }
            let files = try FileManager.default.contentsOfDirectory(atPath: comfy.folder.appendingPathComponent("output").path).filter { $0.hasSuffix(".png") }
            #expect(files.sorted() == ["smoke_00001_.png", "smoke_00002_.png"])
        }
    }

    @Test func view_answers404_400_403_asComfyUI() async throws {
        try await withStrictComfy { comfy async throws in
            #expect(try await comfy.get("/view?filename=nothing.png&type=output").status == 404)
            #expect(try await comfy.get("/view?filename=..%2Fsecret.png").status == 400)
            #expect(try await comfy.get("/view?filename=a.png&subfolder=..%2F..").status == 403)
            #expect(try await comfy.get("/view?type=output").status == 404)
        }
    }

    @Test func aPreviewOnlyWorkflow_reportsTempImages_andSavesNothingInOutput() async throws {
        try await withStrictComfy { comfy in
            var nodes = ComfyHarness.modelFree()
            nodes[2].1 = ["class_type": "PreviewImage", "inputs": ["images": ["21", 0]]]
            let id = "preview"
            _ = try await comfy.submit(nodes, id: id)
            let image = try #require((try await comfy.finished(id).object("outputs")?.object("22")?["images"] as? [[String: Any]])?.first)
            #expect(image["type"] as? String == "temp")
            #expect((image["filename"] as? String)?.hasPrefix("ComfyUI_temp_") == true)
            let output = comfy.folder.appendingPathComponent("output").path
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).filter { $0.hasSuffix(".png") }.isEmpty)
        }
    }

    @Test func writtenPNGs_carryThePromptAndWorkflow_unlessMetadataIsDisabled() async throws {
        for disabled in [false, true] {
            try await withStrictComfy(configure: { $0.disableMetadata = disabled }) { comfy in
                let id = "meta"
                _ = try await comfy.submit(ComfyHarness.modelFree(), id: id, extra: [("extra_data", ["extra_pnginfo": ["workflow": ["nodes": []]]])])
                _ = try await comfy.finished(id)
                let png = try Data(contentsOf: comfy.folder.appendingPathComponent("output/smoke_00001_.png"))
                let text = String(decoding: png, as: UTF8.self)
                #expect(text.contains("tEXtprompt\0{\"20\": {\"class_type\": \"EmptyImage\"") == !disabled)
                #expect(text.contains("tEXtworkflow\0{\"nodes\": []}") == !disabled)
            }
        }
    }

    @Test func anInterrupt_landsAtTheNextStepBoundary_andAnIdleInterruptDoesNotCarryOver() async throws {
        try await withStrictComfy(secondsPerImage: 30, configure: { $0.interruptLatency = 1.5 }) { comfy in
            // Sent while idle: lost, so the next prompt runs to its end.
            #expect(try await comfy.post("/interrupt", []).status == 200)
            await comfy.comfy.setSecondsPerImage(0.3)
            let quick = "quick"
            _ = try await comfy.submit(ComfyHarness.modelFree(), id: quick)
            #expect(try await comfy.finished(quick).object("status")?["status_str"] as? String == "success")

            await comfy.comfy.setSecondsPerImage(30)
            let long = "long"
            _ = try await comfy.submit(ComfyHarness.standard(), id: long)
            try await eventually("the long prompt running") { try await comfy.queue().running == [long] }
            let sent = ContinuousClock.now
            #expect(try await comfy.post("/interrupt", []).status == 200)
            #expect(try await comfy.queue().running == [long])  // cooperative: still running
            let history = try await comfy.finished(long)
            let waited = ContinuousClock.now - sent
            #expect(waited >= .seconds(1.5) && waited < .seconds(10), "interrupt took \(waited)")
            let messages = try #require(history.object("status")?["messages"] as? [[Any]])
            let interrupted = try #require(messages.last)
            #expect(interrupted.first as? String == "execution_interrupted")
            #expect((interrupted.last as? [String: Any])?["node_id"] as? String == "3")
        }
    }

    @Test func aCheckpointFault_failsEveryPrompt_onTheLoader_asACorruptFileDoes() async throws {
        try await withStrictComfy { comfy in
            await comfy.comfy.setFault(.checkpointUnreadable)
            for id in ["f1", "f2"] {
                _ = try await comfy.submit(ComfyHarness.standard(), id: id)
                let history = try await comfy.finished(id)
                #expect(history.object("status")?["status_str"] as? String == "error")
                #expect(history.object("status")?["completed"] as? Bool == false)
                let error = try #require((history.object("status")?["messages"] as? [[Any]])?.last?.last as? [String: Any])
                #expect(error["node_id"] as? String == "4")
                #expect(error["node_type"] as? String == "CheckpointLoaderSimple")
                #expect(error["exception_message"] as? String == "Error while deserializing header: header too large\n")
                #expect(error["exception_type"] as? String == "safetensors._safetensors_rust.SafetensorError")
            }
            await comfy.comfy.setFault(.cudaError)
            _ = try await comfy.submit(ComfyHarness.standard(), id: "f3")
            let cuda = try #require((try await comfy.finished("f3").object("status")?["messages"] as? [[Any]])?.last?.last as? [String: Any])
            #expect((cuda["exception_message"] as? String)?.hasPrefix("CUDA error") == true)
            await comfy.comfy.setFault(nil)
            _ = try await comfy.submit(ComfyHarness.standard(), id: "f4")
            #expect(try await comfy.finished("f4").object("status")?["status_str"] as? String == "success")
        }
    }
}

@Suite("devcloud ComfyUI finds models where ComfyUI does")
struct DevcloudComfyModelFolderTests {
    @Test func aBaseDirectoryWithoutCustomNodes_failsAtStart() throws {
        try withTemporaryFolderSync { folder in
            #expect(throws: ExtraModelPaths.Invalid.self) {
                _ = try DevcloudComfy.Configuration.comfyUI(baseDirectory: folder, currentDirectory: folder)
            }
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("custom_nodes"), withIntermediateDirectories: true)
            let configuration = try DevcloudComfy.Configuration.comfyUI(baseDirectory: folder, currentDirectory: URL(fileURLWithPath: "/"))
            #expect(configuration.modelFolders["checkpoints"]?.first?.path == folder.standardizedFileURL.path + "/models/checkpoints")
            #expect(configuration.outputDirectory.path == folder.standardizedFileURL.path + "/output")
        }
    }

    @Test func anExtraModelPathsYAML_addsFolders_relativeToItsBasePath_andPartialFilesAreNotListed() async throws {
        try await withTemporaryFolder { folder in
            let volume = folder.appendingPathComponent("volume")
            for sub in ["ckpt", "lora-a", "lora-b"] { try FileManager.default.createDirectory(at: volume.appendingPathComponent(sub), withIntermediateDirectories: true) }
            try Data([1]).write(to: volume.appendingPathComponent("ckpt/base.safetensors"))
            try Data([1]).write(to: volume.appendingPathComponent("ckpt/half.safetensors.partial"))
            try Data([1]).write(to: volume.appendingPathComponent("lora-b/style.safetensors"))
            let yaml = folder.appendingPathComponent("extra_model_paths.yaml")
            try Data("""
                # spotq's pod volume
                spotq:
                    base_path: volume
                    checkpoints: ckpt/
                    loras: |
                        lora-a
                        lora-b
                empty:
                """.utf8).write(to: yaml)
            var configuration = try DevcloudComfy.Configuration.comfyUI(baseDirectory: nil, extraModelPathsConfigs: [yaml], currentDirectory: folder.appendingPathComponent("comfy"))
            configuration.secondsPerImage = 0.1
            let comfy = DevcloudComfy(configuration: configuration, logger: Logger(label: "t"))
            try await withDevcloud({ comfy.register(on: $0) }) { base, client in
                let kinds = String(decoding: try await client.send(CurlClient.HTTPRequest(url: base + "/models")).body, as: UTF8.self)
                #expect(kinds.hasPrefix(#"["checkpoints", "configs", "loras", "vae""#))
                #expect(String(decoding: try await client.send(CurlClient.HTTPRequest(url: base + "/models/checkpoints")).body, as: UTF8.self) == #"["base.safetensors"]"#)
                #expect(String(decoding: try await client.send(CurlClient.HTTPRequest(url: base + "/models/loras")).body, as: UTF8.self) == #"["style.safetensors"]"#)
                #expect(try await client.send(CurlClient.HTTPRequest(url: base + "/models/nonsense")).status == 404)
                // A download that finishes is listed at once, without a restart.
                try FileManager.default.moveItem(at: volume.appendingPathComponent("ckpt/half.safetensors.partial"), to: volume.appendingPathComponent("ckpt/half.safetensors"))
                #expect(String(decoding: try await client.send(CurlClient.HTTPRequest(url: base + "/models/checkpoints")).body, as: UTF8.self)
                    == #"["base.safetensors", "half.safetensors"]"#)
            }
        }
    }

    @Test(arguments: [
        "spotq:\n  checkpoints:\n    - a\n    - b\n", "spotq:\n  loras: [a, b]\n", "checkpoints: a\n", "spotq:\n  nested:\n    deeper: a\n",
    ])
    func yamlBeyondTheSubset_isRefusedWithItsLine(text: String) throws {
        try withTemporaryFolderSync { folder in
            let yaml = folder.appendingPathComponent("x.yaml")
            try Data(text.utf8).write(to: yaml)
            #expect(throws: ExtraModelPaths.Invalid.self) { _ = try ExtraModelPaths.load(yaml) }
        }
    }
}

@Suite("spotq devcloud comfy takes ComfyUI's main.py flags")
struct DevcloudComfyCommandTests {
    @Test func theCommand_startsLikeComfyUI_withBaseDirectoryOutputDirectoryAndAFault() async throws {
        try await withTemporaryFolder { folder in
            let spotq = try ChildProcess.spotqBinary()
            let bare = folder.appendingPathComponent("bare")
            try FileManager.default.createDirectory(at: bare, withIntermediateDirectories: true)
            let refused = try await Shell.capture(spotq, ["devcloud", "comfy", "--listen", "127.0.0.1", "--port", "\(try FreePort.find())", "--base-directory", bare.path])
            #expect(refused.exitCode != 0)
            #expect(refused.output.contains("custom_nodes"))

            let base = folder.appendingPathComponent("ComfyUI")
            for sub in ["custom_nodes", "models/checkpoints"] { try FileManager.default.createDirectory(at: base.appendingPathComponent(sub), withIntermediateDirectories: true) }
            try Data([1]).write(to: base.appendingPathComponent("models/checkpoints/base.safetensors"))
            let port = try FreePort.find()
            let output = folder.appendingPathComponent("images")
            let process = try ChildProcess(spotq, [
                "devcloud", "comfy", "--listen", "127.0.0.1", "--port", "\(port)", "--base-directory", base.path, "--output-directory", output.path,
                "--disable-metadata", "--cpu", "--seconds-per-image", "0.1", "--fault", "checkpoint-unreadable",
            ])
            do {
                try await Self.checkRunning(port: port, output: output)
            } catch {
                Issue.record("spotq devcloud comfy printed:\n\(process.output)")
                await process.cleanUp()
                throw error
            }
            await process.cleanUp()
        }
    }

    static func checkRunning(port: Int, output: URL) async throws {
            let client = try HTTPClient(configuration: CurlConfiguration(), logger: Logger(label: "t"))
            let url = "http://127.0.0.1:\(port)"
            try await eventually("comfy listening", timeout: .seconds(30)) { (try? await client.send(CurlClient.HTTPRequest(url: url + "/system_stats")))?.status == 200 }
            #expect(String(decoding: try await client.send(CurlClient.HTTPRequest(url: url + "/models/checkpoints")).body, as: UTF8.self) == #"["base.safetensors"]"#)
            let failing = try await client.send(CurlClient.HTTPRequest(method: .post, url: url + "/prompt", body: ComfyHarness.body(ComfyHarness.standard(), id: "cli")))
            #expect(failing.status == 200)
            let history = try await eventually("the failed prompt's history", timeout: .seconds(30)) { () -> String? in
                let text = String(decoding: try await client.send(CurlClient.HTTPRequest(url: url + "/history/cli")).body, as: UTF8.self)
                return text == "{}" ? nil : text
            }
            #expect(history.contains("header too large"))
            // The model-free graph loads no checkpoint: it runs, and its PNG has no prompt in it.
            _ = try await client.send(CurlClient.HTTPRequest(method: .post, url: url + "/prompt", body: ComfyHarness.body(ComfyHarness.modelFree(), id: "free")))
            _ = try await eventually("the model-free image", timeout: .seconds(30)) { FileManager.default.fileExists(atPath: output.appendingPathComponent("smoke_00001_.png").path) ? true : nil }
            let png = try Data(contentsOf: output.appendingPathComponent("smoke_00001_.png"))
            #expect(!String(decoding: png, as: UTF8.self).contains("tEXt"))
    }
}

/// A temporary folder for a synchronous test.
func withTemporaryFolderSync(_ body: (URL) throws -> Void) throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_devcloud"))
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try body(folder)
}
