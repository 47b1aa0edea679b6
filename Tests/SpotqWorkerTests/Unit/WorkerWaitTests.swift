import Foundation
import SpotqTestSupport
import Testing

@testable import SpotqWorker
@testable import ServerTestSupport

/// The worker's waits, without servers: each is woken by the event it waits for (or its own
/// deadline, or cancellation), never by a poll.
@Suite("pod worker: waits on models, notices and idleness")
struct WorkerWaitTests {
    @Test func aWaitForModels_endsWhenTheLastOneIsReady() async throws {
        let availability = AssetAvailability(["a", "b"])
        let waiting = Task { await availability.wait(for: ["a", "b"], limit: .seconds(600)) }
        availability.markReady("a")
        availability.markReady("b")
        #expect(try await withTimeout(.seconds(10), "the wait") { await waiting.value } == .ready)
    }

    @Test func aWaitForModels_endsWithTheFirstFailure_andItsReason() async throws {
        let availability = AssetAvailability(["a", "b"])
        let waiting = Task { await availability.wait(for: ["a", "b"], limit: .seconds(600)) }
        availability.markFailed("b", reason: "HTTP 404")
        #expect(try await withTimeout(.seconds(10), "the wait") { await waiting.value } == .failed("model b is unavailable: HTTP 404"))
    }

    @Test func aWaitForModels_endsPendingAtItsLimit_andAModelNotInTheManifestFailsAtOnce() async throws {
        let availability = AssetAvailability(["a"])
        #expect(await availability.wait(for: ["a"], limit: .milliseconds(50)) == .pending)
        #expect(await availability.wait(for: ["a", "other"], limit: .seconds(600)) == .failed("model other is not in the batch's manifest"))
    }

    @Test func aCancelledWaitForModels_returnsPending() async throws {
        let availability = AssetAvailability(["a"])
        let waiting = Task { await availability.settled(["a"]) }
        waiting.cancel()
        #expect(try await withTimeout(.seconds(10), "the wait") { await waiting.value } == .pending)
    }

    @Test func theNotice_wakesItsWaiters_andKeepsTheSoonerDeadline() async throws {
        let notice = TerminationNotice()
        let waiting = Task { await notice.wait() }
        notice.announce(reason: "spot notice (terminate)", within: .seconds(100))
        try await withTimeout(.seconds(10), "the notice") { await waiting.value }
        notice.announce(reason: "SIGTERM", within: .seconds(3))
        notice.announce(reason: "later", within: .seconds(50))
        #expect(notice.reason == "SIGTERM")
        #expect(notice.remaining().map { $0 <= .seconds(3) } == true)
    }

    @Test func theDeadlineWait_returnsAtOnceForANoticeWithNoGrace() async throws {
        let notice = TerminationNotice()
        notice.announce(reason: "SIGTERM", within: .zero)
        try await withTimeout(.seconds(10), "the deadline") { await notice.waitForDeadline() }
    }

    @Test func theIdleTimer_waitsForTheDeliveryInHand_thenForTheIdlePeriod() async throws {
        let idle = IdleTimer()
        idle.begin()
        let watching = Task { try await idle.idle(for: .milliseconds(50)) }
        // While a delivery is in hand nothing counts as idle, however long it takes.
        let early = Task { try await idle.idle(for: .zero) }
        idle.end()
        try await withTimeout(.seconds(10), "idle with nothing in hand") { try await early.value }
        try await withTimeout(.seconds(10), "idle for the period") { try await watching.value }
    }

    @Test func aHandoff_givesTheFirstValueToEveryWaiter_andACancelledWaiterGetsNil() async throws {
        let handoff = Handoff<Int>()
        let first = Task { await handoff.value() }
        let cancelled = Task { await handoff.value() }
        cancelled.cancel()
        #expect(try await withTimeout(.seconds(10), "the cancelled waiter") { await cancelled.value } == nil)
        handoff.give(1)
        handoff.give(2)
        #expect(try await withTimeout(.seconds(10), "the waiter") { await first.value } == 1)
        #expect(await handoff.value() == 1)
    }

    @Test func theGPUCheck_keepsWhatItPrinted_andSeesNoSecrets() async throws {
        let failed = await GPUCheck(command: "echo 'CUDA error: no device' >&2; exit 3").run()
        #expect(failed.status == 3)
        #expect(!failed.passed)
        #expect(failed.output == "CUDA error: no device")
        #expect(await GPUCheck(command: "true").run().passed)
        // The test environment sets SPOTQ_AMQP_URL (.spotq/env); no test reads this token.
        setenv("SPOTQ_UPLOAD_TOKEN", "a-token-the-check-must-not-see", 1)
        let printed = await GPUCheck(command: #"echo "token=${SPOTQ_UPLOAD_TOKEN:-none} broker=${SPOTQ_AMQP_URL:-none}""#).run()
        #expect(printed.passed)
        #expect(printed.output == "token=none broker=none")
    }

    @Test func aCancelledGPUCheck_isKilled_andFails() async throws {
        let check = Task { await GPUCheck(command: "sleep 600").run() }
        check.cancel()
        let outcome = try await withTimeout(.seconds(10), "the killed check") { await check.value }
        #expect(!outcome.passed)
    }
}

@Suite("ComfyUI's refusals, as real ComfyUI words them")
struct ComfyRefusalTextTests {
    @Test func aMissingCheckpoint_isNamedFromNodeErrors_sinceRealComfyUILeavesDetailsEmpty() throws {
        // Captured from ComfyUI 0.3.64 (../shared/reference/comfyui-real.md).
        let answer = #"""
            {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
             "node_errors": {"4": {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                 "details": "ckpt_name: 'missing.safetensors' not in ['broken.safetensors']",
                 "extra_info": {"input_name": "ckpt_name", "input_config": [["broken.safetensors"], {"tooltip": "..."}], "received_value": "missing.safetensors"}}],
               "dependent_outputs": ["9"], "class_type": "CheckpointLoaderSimple"}}}
            """#
        let object = try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any]
        #expect(ComfyClient.describeError(object) == "prompt_outputs_failed_validation: Prompt outputs failed validation; node 4 CheckpointLoaderSimple: ckpt_name: value_not_in_list: ckpt_name: 'missing.safetensors' not in ['broken.safetensors']")
        let unknown = try JSONSerialization.jsonObject(with: Data(#"{"error": {"type": "invalid_prompt", "message": "Cannot execute because node KSamplerFancy does not exist.", "details": "Node ID '#3'", "extra_info": {}}, "node_errors": {}}"#.utf8)) as? [String: Any]
        #expect(ComfyClient.describeError(unknown) == "invalid_prompt: Cannot execute because node KSamplerFancy does not exist. (Node ID '#3')")
    }

    @Test func anExecutionError_endsWithoutTheLineBreakRealComfyUISends() {
        let status: [String: Any] = ["status_str": "error", "messages": [["execution_error", [
            "exception_type": "safetensors._safetensors_rust.SafetensorError", "exception_message": "Error while deserializing header: header too large\n",
        ] as [String: Any]]]]
        #expect(ComfyClient.describeMessages(status) == "safetensors._safetensors_rust.SafetensorError: Error while deserializing header: header too large")
    }
}
