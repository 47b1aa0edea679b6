import CurlClient
import Foundation
import Logging
import SpotqCore
@testable import SpotqDevcloud
import SpotqSynthetic
import SpotqTestSupport
import Testing

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


@Suite("devcloud ComfyUI's validator, without a server")
struct ComfyPromptValidatorTests {
    static func nodes(_ text: String) throws -> JSONValue { try ComfyJSON.parse(Array(text.utf8)) }

    @Test func twoOutputsFailingOnOneLoader_bothAreItsDependentOutputs_andTheOutputsOwnReasonsReachDetails() throws {
        // Two SaveImage nodes behind one loader with a missing checkpoint, and a third output
        // that is itself broken (no filename_prefix): its reason, unlike the others, is in details.
        let prompt = try Self.nodes("""
            {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "gone.safetensors"}},
             "8": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["4", 2]}},
             "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
             "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "a", "images": ["8", 0]}},
             "19": {"class_type": "SaveImage", "inputs": {"filename_prefix": "b", "images": ["8", 0]}},
             "29": {"class_type": "PreviewImage", "inputs": {}}}
            """)
        guard case .refused(let error, let nodeErrors) = ComfyPromptValidator.validate(prompt, modelFiles: { _ in [] }) else {
            Issue.record("not refused")
            return
        }
        #expect(error[member: "type"] == "prompt_outputs_failed_validation")
        #expect(error[member: "details"] == "Required input is missing: images")
        #expect(nodeErrors[member: "4"]?[member: "dependent_outputs"] == ["9", "19", "29"])
        #expect(nodeErrors[member: "29"]?[member: "dependent_outputs"] == ["29"])
    }

    @Test func valuesAreConvertedAsPythonConvertsThem_beforeTheRangeChecks() throws {
        let prompt = try Self.nodes("""
            {"1": {"class_type": "EmptyImage", "inputs": {"width": "64", "height": 32.9, "batch_size": true, "color": "red"}},
             "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": 5, "images": ["1", 0]}}}
            """)
        guard case .refused(_, let nodeErrors) = ComfyPromptValidator.validate(prompt, modelFiles: { _ in [] }) else {
            Issue.record("not refused")
            return
        }
        let errors = nodeErrors[member: "1"]?[member: "errors"]
        #expect(errors == [[
            "type": "invalid_input_type", "message": "Failed to convert an input value to a INT value",
            "details": "color, red, invalid literal for int() with base 10: 'red'",
            "extra_info": ["input_name": "color", "input_config": ["INT", ["default": 0, "min": 0, "max": 16777215, "step": 1, "display": "color"]],
                           "received_value": "red", "exception_message": "invalid literal for int() with base 10: 'red'"],
        ]])
    }
}
