import Foundation
import SpotqCore
import Testing

@testable import SpotqWorker

/// Whose fault each failure real ComfyUI gives is (../shared/reference/comfyui-real.md),
/// without ComfyUI: the item's, the model's or the pod's.
@Suite("pod worker: whose fault a failed attempt is")
struct AttemptFaultTests {
    static let verified: Set<String> = ["base.safetensors", "style.safetensors"]
    static let loaders = ["4": "base.safetensors", "10": "style.safetensors"]

    static func fault(_ failure: ComfyFailure) -> AttemptFault {
        AttemptFault.of(failure, verifiedModels: verified, modelOfNode: loaders)
    }

    static func notInList(_ input: String, _ value: String, node: String = "4", classType: String = "CheckpointLoaderSimple") -> ComfyFailure {
        .refused(ComfyRefusal(
            type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: "",
            nodeErrors: [.init(node: node, classType: classType, type: "value_not_in_list", inputName: input, receivedValue: value, message: "\(input): '\(value)' not in []")]))
    }

    static func executionError(_ type: String, _ message: String, node: String = "3", nodeType: String = "KSampler") -> ComfyFailure {
        .executionError(.init(nodeID: node, nodeType: nodeType, exceptionType: type, message: message))
    }

    @Test func refusalsOfTheWorkflowItself_areTheItemsAndFinal() {
        let sampler = ComfyFailure.refused(ComfyRefusal(
            type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: "",
            nodeErrors: [.init(node: "3", classType: "KSampler", type: "value_not_in_list", inputName: "sampler_name", receivedValue: "euler_a", message: "sampler_name: 'euler_a' not in (list of length 42)")]))
        let steps = ComfyFailure.refused(ComfyRefusal(
            type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: "",
            nodeErrors: [.init(node: "3", classType: "KSampler", type: "value_smaller_than_min", inputName: "steps", receivedValue: nil, message: "Value 0 smaller than min of 1")]))
        let unknownClass = ComfyFailure.refused(ComfyRefusal(type: "invalid_prompt", message: "Cannot execute because node KSamplerFancy does not exist.", details: "Node ID '#3'"))
        for failure in [sampler, steps, unknownClass] {
            #expect(Self.fault(failure) == .item(failure.description, final: true), "\(failure)")
        }
        #expect(Self.fault(sampler).result == .refused("ComfyUI refused the workflow: prompt_outputs_failed_validation: Prompt outputs failed validation; node 3 KSampler: sampler_name: value_not_in_list: sampler_name: 'euler_a' not in (list of length 42)"))
        // A model the worker never had (not in its verified set) is the item's too.
        #expect(Self.fault(Self.notInList("ckpt_name", "other.safetensors")) == .item(Self.notInList("ckpt_name", "other.safetensors").description, final: true))
        #expect(Self.fault(.noImage(promptID: "p")) == .item("ComfyUI finished prompt p without saving an image", final: true))
    }

    @Test func aVerifiedModelNotInComfyUIsList_isThePodsFault_notTheItems() {
        for (input, value, node, classType) in [("ckpt_name", "base.safetensors", "4", "CheckpointLoaderSimple"), ("lora_name", "style.safetensors", "10", "LoraLoader")] {
            guard case .pod(let reason) = Self.fault(Self.notInList(input, value, node: node, classType: classType)) else {
                Issue.record("\(value) not listed is not a pod fault")
                continue
            }
            #expect(reason.hasPrefix("ComfyUI does not list model \(value), which this pod verified on disk: it does not see the worker's model folders"))
        }
    }

    @Test func aVerifiedModelThatFailsToLoad_isTheModelsFault() {
        let header = Self.executionError("safetensors._safetensors_rust.SafetensorError", "Error while deserializing header: header too large", node: "4", nodeType: "CheckpointLoaderSimple")
        #expect(Self.fault(header) == .asset(filename: "base.safetensors", reason: "ComfyUI cannot load it: safetensors._safetensors_rust.SafetensorError: Error while deserializing header: header too large"))
        let lora = Self.executionError("RuntimeError", "Error(s) in loading state_dict", node: "10", nodeType: "LoraLoader")
        #expect(Self.fault(lora) == .asset(filename: "style.safetensors", reason: "ComfyUI cannot load it: RuntimeError: Error(s) in loading state_dict"))
        #expect(Self.fault(header).result == .modelUnusable(filename: "base.safetensors", reason: "ComfyUI cannot load it: safetensors._safetensors_rust.SafetensorError: Error while deserializing header: header too large"))
        // Out of memory while loading is the machine's, whatever the node.
        let memory = Self.executionError("torch.OutOfMemoryError", "CUDA out of memory. Tried to allocate 20.00 MiB", node: "4", nodeType: "CheckpointLoaderSimple")
        #expect(Self.fault(memory) == .pod(memory.description))
    }

    @Test func theMachinesFailures_areThePods() {
        let failures: [ComfyFailure] = [
            .unreachable(what: "POST /prompt", error: "connection refused"),
            .serverError(what: "POST /prompt", status: 500),
            .unexpectedAnswer(what: "POST /prompt", status: 404),
            .lost(promptID: "p"),
            .interruptedInComfy(nodeType: "KSampler"),
            .outputUnavailable(filename: "spotq_00001_.png", status: 404),
            Self.executionError("RuntimeError", "CUDA error: an illegal memory access was encountered"),
            Self.executionError("torch.OutOfMemoryError", "Allocation on device"),
            Self.executionError("OSError", "[Errno 28] No space left on device", node: "9", nodeType: "SaveImage"),
        ]
        for failure in failures {
            #expect(Self.fault(failure) == .pod(failure.description), "\(failure)")
            #expect(Self.fault(failure).result == .podFault(failure.description))
        }
    }

    @Test func aRunThatFailsInAnotherNode_orTimesOut_isTheItemsAndMayBeRetried() {
        let shapes = Self.executionError("RuntimeError", "mat1 and mat2 shapes cannot be multiplied (77x2048 and 768x320)")
        #expect(Self.fault(shapes) == .item("ComfyUI could not run the prompt: RuntimeError: mat1 and mat2 shapes cannot be multiplied (77x2048 and 768x320) (node 3 KSampler)", final: false))
        #expect(Self.fault(shapes).result == .failed(shapes.description))
        #expect(Self.fault(.timedOut(promptID: "p", limit: .seconds(1800))) == .item("ComfyUI did not finish prompt p within 1800.0 seconds", final: false))
        // A loader failing on a file the item needs but the worker did not verify is no model's fault.
        let unverified = AttemptFault.of(
            Self.executionError("SafetensorError", "header too large", node: "4", nodeType: "CheckpointLoaderSimple"), verifiedModels: [], modelOfNode: Self.loaders)
        #expect(unverified == .item("ComfyUI could not run the prompt: SafetensorError: header too large (node 4 CheckpointLoaderSimple)", final: false))
    }

    @Test func anExecutionErrorIsReadFromTheHistory_withItsNode() {
        let status: [String: Any] = ["status_str": "error", "messages": [
            ["execution_start", ["prompt_id": "p"]],
            ["execution_error", ["node_id": "4", "node_type": "CheckpointLoaderSimple", "exception_type": "safetensors._safetensors_rust.SafetensorError", "exception_message": "Error while deserializing header: header too large\n"] as [String: Any]],
        ] as [[Any]]]
        #expect(ComfyClient.executionFailure(status) == .executionError(.init(
            nodeID: "4", nodeType: "CheckpointLoaderSimple", exceptionType: "safetensors._safetensors_rust.SafetensorError", message: "Error while deserializing header: header too large")))
        let interrupted: [String: Any] = ["status_str": "error", "messages": [["execution_interrupted", ["node_id": "3", "node_type": "KSampler"]]] as [[Any]]]
        #expect(ComfyClient.executionFailure(interrupted) == .interruptedInComfy(nodeType: "KSampler"))
    }

    @Test func aWorkflowWhoseNodeIsNotAnObject_isRefusedBeforeComfyUIAnswers500() throws {
        let body = #"{"version": 1, "batch_id": 1, "item_id": 2, "request_id": "r", "checkpoint": "base.safetensors", "workflow": {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}}, "5": 5}}"#
        #expect(throws: WorkItem.Invalid.self) { try WorkItem(body: Array(body.utf8)) }
        let good = #"{"version": 1, "batch_id": 1, "item_id": 2, "request_id": "r", "checkpoint": "base.safetensors", "loras": [{"file": "style.safetensors"}], "workflow": {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}}, "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "style.safetensors"}}, "3": {"class_type": "KSampler", "inputs": {}}}}"#
        #expect(try WorkItem(body: Array(good.utf8)).modelOfNode == Self.loaders)
    }
}

@Suite("pod worker: the pod-fault breaker")
struct PodFaultBreakerTests {
    static let backoff = RetryBackoff(initial: .seconds(1), maximum: .seconds(30), multiplier: 2, jitter: 0)

    @Test func thePauseGrowsWithTheFaultsInARow_upToItsCap_andNoneBeforeAFault() {
        var breaker = PodFaultBreaker(limit: 100, backoff: Self.backoff)
        var random = SystemRandomNumberGenerator()
        #expect(breaker.pause(using: &random) == .zero)
        var pauses: [Duration] = []
        for _ in 1...7 {
            #expect(breaker.recordFault("ComfyUI unreachable") == .carryOn)
            pauses.append(breaker.pause(using: &random))
        }
        #expect(pauses == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(30), .seconds(30)])
    }

    @Test func theLimitthFaultInARow_tripsOnce_withTheCountAndTheLastReason() {
        var breaker = PodFaultBreaker(limit: 3, backoff: Self.backoff)
        #expect(breaker.recordFault("a") == .carryOn)
        #expect(breaker.recordFault("b") == .carryOn)
        #expect(breaker.recordFault("ComfyUI unreachable") == .trip(reason: "3 pod faults in a row; last: ComfyUI unreachable"))
        #expect(breaker.recordFault("again") == .carryOn)
        var strict = PodFaultBreaker(limit: 1, backoff: Self.backoff)
        #expect(strict.recordFault("x") == .trip(reason: "1 pod fault in a row; last: x"))
    }

    @Test func aStoredImage_resetsTheCountAndThePause() {
        var breaker = PodFaultBreaker(limit: 3, backoff: Self.backoff)
        var random = SystemRandomNumberGenerator()
        _ = breaker.recordFault("a")
        _ = breaker.recordFault("b")
        breaker.recordSuccess()
        #expect(breaker.faultsInARow == 0)
        #expect(breaker.pause(using: &random) == .zero)
        #expect(breaker.recordFault("c") == .carryOn)
        #expect(breaker.recordFault("d") == .carryOn)
        #expect(breaker.recordFault("e") == .trip(reason: "3 pod faults in a row; last: e"))
    }
}
