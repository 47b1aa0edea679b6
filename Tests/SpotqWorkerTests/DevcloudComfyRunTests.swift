import CurlClient
import Foundation
import Logging
import SpotqCore
@testable import SpotqDevcloud
import SpotqSynthetic
import SpotqTestSupport
import Testing

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
                let history = try await comfy.finished(id)
                #expect(history.object("status")?["status_str"] as? String == "success")
                // As real ComfyUI: [number, id, graph, extra data with the client_id, outputs].
                let prompt = try #require(history["prompt"] as? [Any])
                #expect(prompt.count == 5 && prompt[1] as? String == id)
                #expect((prompt[3] as? [String: Any])?["client_id"] as? String == "spotq-worker")
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

    @Test func objectInfo_listsAClassInputs_withTheModelFilesOfNow() async throws {
        try await withStrictComfy { comfy in
            let info = try ComfyHarness.object(try await comfy.get("/object_info/CheckpointLoaderSimple").body)
            let ckpt = try #require(info.object("CheckpointLoaderSimple")?.object("input")?.object("required")?["ckpt_name"] as? [Any])
            #expect(ckpt.first as? [String] == ["base.safetensors"])
            #expect(try await comfy.get("/object_info/NoSuchNode").body == Array("{}".utf8))
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
            let remaining = try ComfyHarness.object(try await comfy.get("/prompt").body).object("exec_info")?["queue_remaining"] as? Int
            #expect(remaining == 1)
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
            #expect(refused.exitCode == 1)
            #expect(refused.output.contains("custom_nodes"))
            // A bare --listen (every address, as main.py's) parses: it fails on the same folder, before binding.
            let bareListen = try await Shell.capture(spotq, ["devcloud", "comfy", "--listen", "--port", "\(try FreePort.find())", "--base-directory", bare.path])
            #expect(bareListen.exitCode == 1 && bareListen.output.contains("custom_nodes"), "\(bareListen.output)")
            let stray = try await Shell.capture(spotq, ["devcloud", "comfy", "127.0.0.1", "--base-directory", bare.path])
            #expect(stray.exitCode == 64)

            let base = folder.appendingPathComponent("ComfyUI")
            for sub in ["custom_nodes", "models/checkpoints"] { try FileManager.default.createDirectory(at: base.appendingPathComponent(sub), withIntermediateDirectories: true) }
            try Data([1]).write(to: base.appendingPathComponent("models/checkpoints/base.safetensors"))
            let port = try FreePort.find()
            let output = folder.appendingPathComponent("images")
            let process = try ChildProcess(spotq, [
                "devcloud", "comfy", "--listen", "127.0.0.1", "--port", "\(port)", "--base-directory", base.path, "--output-directory", output.path,
                "--disable-metadata", "--cpu", "--seconds-per-image", "0.1", "--fault", "checkpoint-unreadable", "--image-scale", "1",
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
            // Its history, not the file's appearance: the file is written in place, as ComfyUI writes it.
            _ = try await eventually("the model-free image", timeout: .seconds(30)) { () -> String? in
                let text = String(decoding: try await client.send(CurlClient.HTTPRequest(url: url + "/history/free")).body, as: UTF8.self)
                return text.contains("success") ? text : nil
            }
            let png = try Data(contentsOf: output.appendingPathComponent("smoke_00001_.png"))
            #expect(!String(decoding: png, as: UTF8.self).contains("tEXt"))
            // Full size (EmptyImage's 64×32), as ComfyUI writes it: IHDR's width and height.
            #expect(Array(png[16..<24]) == [0, 0, 0, 64, 0, 0, 0, 32])
    }
}

