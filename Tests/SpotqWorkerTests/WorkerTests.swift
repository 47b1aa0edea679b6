import AMQPClient
import Foundation
import Hummingbird
import Logging
import PostgresClient
import PostgresTestSupport
import SpotqBroker
import SpotqCore
import SpotqDevcloud
import SpotqHTTP
import SpotqServer
import SpotqStore
import SpotqTestSupport
import SpotqWorker
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("pod worker: downloads, ComfyUI, uploads, acks")
struct WorkerTests {
    @Test func aPodRunsItsBatch_storesEveryImageOnce_deadLettersWhatComfyUIRefuses_andLeaves() async throws {
        try await PodWorld.with(requests: { checkpoint, lora in
            (0..<4).map { PodWorld.request("plain-\($0)", checkpoint: checkpoint) }
                + (0..<3).map { PodWorld.request("styled-\($0)", checkpoint: checkpoint, loras: [lora]) }
                + [PodWorld.request("poison", checkpoint: checkpoint, extraNode: "MysteryNode")]
        }) { world in
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 7)
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 7)
            // Each image left ComfyUI's output folder once the server had stored it.
            #expect(world.outputsLeft() == 0)
            let dead = try await world.fixture.connection.withChannel { try await $0.declareQueuePassive(BrokerNames.deadLetterQueue).messageCount }
            #expect(dead == 1)
            try await eventually("the poison item marked failed") {
                try await world.count("SELECT count(*) FROM image_generation_queue WHERE request_id = 'poison' AND status = 'failed' AND last_error LIKE '%MysteryNode%'") == 1
            }
            try await eventually("asset.ready and image.done events recorded") {
                let ready = try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'asset.ready'")
                let done = try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'image.done'")
                return ready == 2 && done == 7
            }
            // Markers let a restarted pod skip verified downloads; with nothing left it leaves at once.
            let again = try await withTimeout(.seconds(60), "a second worker") { try await Worker(configuration: world.workerConfiguration(pod: "pod-2"), logger: testLogger).run() }
            #expect(again == .finished)
            try await eventually("reused models announced") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'asset.ready' AND detail ->> 'reused' = 'true'") == 2
            }
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 7)
        }
    }
}

extension WorkerTests {
    /// The last row, measured against real ComfyUI: a workflow that loads no model
    /// (EmptyImage → ImageBlur → SaveImage) runs as any other.
    @Test func aModelFreeWorkflow_runsAndIsStored() async throws {
        try await PodWorld.with(requests: { checkpoint, _ in
            (0..<2).map { index in
                guard case .object(var fields) = TextToImageRequest(requestID: "free-\(index)", checkpoint: checkpoint, positive: "x").message(),
                      let at = fields.firstIndex(where: { $0.0 == "workflow" }) else { return [] }
                fields[at].1 = .object(ComfyHarness.modelFree(prefix: "free-\(index)"))
                return JSONValue.object(fields).serialized()
            }
        }) { world in
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 2)
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 2)
        }
    }

    /// ComfyUI serves a graph it ran before from its cache, naming the file it wrote then,
    /// which the worker deleted once it was stored: each attempt's own file name prefix makes
    /// only the saving node run again.
    @Test func twoItemsWithTheVerySameGraph_areBothStored_thoughTheFirstOnesFileWasDeleted() async throws {
        try await PodWorld.with(requests: { checkpoint, _ in
            (0..<3).map { index in
                TextToImageRequest(requestID: "twin-\(index)", checkpoint: checkpoint, positive: "one and the same image").messageJSON()
            }
        }) { world in
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 3)
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 3)
            #expect(world.outputsLeft() == 0)
            try await eventually("three images done, none interrupted by a pod fault") {
                let done = try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'image.done'")
                let faults = try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'image.interrupted'")
                return done == 3 && faults == 0
            }
        }
    }
}

@Suite("pod worker: kills, reclaims, outages and broken models")
struct WorkerFaultTests {
    static func mixed(_ checkpoint: String, _ lora: String) -> [[UInt8]] {
        (0..<4).map { PodWorld.request("plain-\($0)", checkpoint: checkpoint) }
            + (0..<2).map { PodWorld.request("styled-\($0)", checkpoint: checkpoint, loras: [lora]) }
    }

    /// Waits until ComfyUI has started `count` images in all.
    static func untilComfyStarted(_ world: PodWorld, _ count: Int) async throws {
        try await eventually("ComfyUI started \(count) image(s)", timeout: .seconds(30)) { await world.comfy.started >= count }
    }

    @Test func aFailedGPUCheck_reportsGPUFailed_takesNoWork_andExitsThree() async throws {
        try await PodWorld.with(requests: Self.mixed) { world in
            var environment = world.workerEnvironment(pod: "pod-broken-gpu")
            environment["SPOTQ_GPU_CHECK"] = "echo 'CUDA error: no CUDA-capable device is detected' >&2; exit 1"
            let worker = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: environment)
            defer { Task { await worker.cleanUp() } }
            #expect(await worker.wait(timeout: .seconds(30)) == 3, "worker output:\n\(worker.output)")
            try await eventually("gpu_failed recorded") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'gpu_failed' AND provider_pod_id = 'pod-broken-gpu'") == 1
            }
            // What the check printed is kept, in the event and in the log.
            #expect(try await world.count("""
                SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'gpu_failed' AND provider_pod_id = 'pod-broken-gpu'
                AND detail ->> 'output' LIKE '%no CUDA-capable device is detected%' AND (detail ->> 'status')::numeric = 1
                """) == 1)
            #expect(worker.output.contains("no CUDA-capable device is detected"), "worker output:\n\(worker.output)")
            #expect(try await world.queueDepths() == (6, 0))
            #expect(await world.comfy.started == 0)
        }
    }

    @Test func aBusyServersRetryAfter_isHonouredByTheWorker_beforeItUploadsAgain() async throws {
        let concurrency = IngestConcurrency(maxConcurrent: 1, maxPerToken: 1, retryAfterSeconds: 3)
        try await PodWorld.with(ingest: concurrency, requests: { checkpoint, _ in [PodWorld.request("busy-0", checkpoint: checkpoint)] }) { world in
            // Another client holds the server's only ingest slot.
            let port = try #require(URLComponents(string: world.serverURL)?.port)
            let stalled = try RawSocket.connect(port: port)
            try RawSocket.send(stalled, Data("POST /v1/batches/\(world.batch)/results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(BatchToken.make(secret: PodWorld.secret, batchID: world.batch))\r\nContent-Type: application/zip\r\nContent-Length: 100000\r\n\r\n".utf8) + Data(count: 1_000))
            let gate = world.server.gate
            try await eventually("the slot held") { gate.inProgress == 1 }
            let decisionsBefore = gate.admissions + gate.refusals
            // Without SPOTQ_COMFY_OUTPUT_DIR nothing is deleted.
            var configuration = world.workerConfiguration()
            configuration.comfyOutputDirectory = nil
            let worker = Task { try await Worker(configuration: configuration, logger: testLogger).run() }
            try await eventually("the worker's upload answered 503", timeout: .seconds(60)) { gate.refusals >= 1 }
            let refused = ContinuousClock.now
            close(stalled)
            // The worker's next attempt, whatever its answer (the stalled slot may be freed late).
            try await eventually("the worker's next attempt", timeout: .seconds(60)) { gate.admissions + gate.refusals >= decisionsBefore + 2 }
            // Its own backoff would have tried again after about 0.5 s; the server asked for 3.
            #expect(ContinuousClock.now - refused >= .milliseconds(2_500), "the worker came back before Retry-After")
            try await eventually("the image stored", timeout: .seconds(60)) {
                try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 1
            }
            #expect(try await withTimeout(.seconds(60), "the worker") { try await worker.value } == .finished)
            #expect(world.outputsLeft() == 1)
        }
    }

    @Test func aPromptLostToAComfyUIRestart_failsAtOnce_andTheImageIsDoneOnItsRetry() async throws {
        try await PodWorld.with(secondsPerImage: 600, requests: { checkpoint, _ in [PodWorld.request("lost-0", checkpoint: checkpoint)] }) { world in
            let worker = Task { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            try await eventually("ComfyUI generating", timeout: .seconds(60)) { await world.comfy.isGenerating }
            // ComfyUI restarts mid-image: its queue and history are gone; the next prompts are quick.
            await world.comfy.setSecondsPerImage(0.05)
            await world.comfy.restart()
            // Noticed at once (not after the 30-minute generation timeout), retried, stored once.
            try await eventually("the image stored after the restart", timeout: .seconds(60)) {
                try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 1
            }
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 1)
            // A pod fault: handed back, not counted against the item.
            try await eventually("the lost prompt handed back as the pod's fault") {
                try await world.count("""
                    SELECT count(*) FROM pod_events WHERE kind = 'image.interrupted' AND detail ->> 'pod_fault' = 'true' AND detail ->> 'reason' LIKE '%no longer has prompt%'
                    """) == 1
            }
            #expect(try await withTimeout(.seconds(60), "the worker") { try await worker.value } == .finished)
            #expect(try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'image.failed'") == 0)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE attempts = 0 AND status = 'done'") == 1)
        }
    }

    @Test func aWorkerKilledMidImage_hasItsMessagesFinishedByAnother_withNoDuplicates() async throws {
        try await PodWorld.with(secondsPerImage: 30, requests: Self.mixed) { world in
            let first = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: world.workerEnvironment(pod: "pod-killed"))
            try await Self.untilComfyStarted(world, 1)
            first.signal(SIGKILL)
            #expect(await first.wait(timeout: .seconds(10)) == -1)
            await first.cleanUp()
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 0)
            // The pod's ComfyUI died with it; the broker hands the killed pod's deliveries
            // back, and a second pod finishes them.
            await world.comfy.setSecondsPerImage(0.05)
            await world.comfy.interrupt()
            let exit = try await withTimeout(.seconds(90), "the second worker") { try await Worker(configuration: world.workerConfiguration(pod: "pod-2"), logger: testLogger).run() }
            #expect(exit == .finished)
            try await world.expectAllDone(6)
            #expect(try await world.queueDepths().dead == 0)
        }
    }

    @Test func sigtermMidImage_requeuesEveryUnfinishedDeliveryAtOnce_andExitsZero() async throws {
        try await PodWorld.with(secondsPerImage: 30, requests: Self.mixed) { world in
            var environment = world.workerEnvironment(pod: "pod-reclaimed")
            environment["SPOTQ_TERMINATION_GRACE_MS"] = "3000"
            environment["SPOTQ_LOG_LEVEL"] = "debug"
            let worker = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: environment)
            defer { Task { await worker.cleanUp() } }
            try await Self.untilComfyStarted(world, 1)
            let signalled = ContinuousClock.now
            worker.signal(SIGTERM)
            // Nothing stays with the gone pod: all six are ready again, none dead-lettered, before
            // RunPod's SIGKILL (5 s): the prefetched one at once, the interrupted image at the grace.
            try await eventually("all deliveries back in the queue", timeout: .seconds(30)) { try await world.queueDepths() == (6, 0) }
            let requeued = ContinuousClock.now - signalled
            let status = await worker.wait(timeout: .seconds(10))
            let exited = ContinuousClock.now - signalled
            // By the worker's own clock (this process is the busier one while the suite runs):
            // the image could not finish within the 3 s grace, so it was interrupted and handed
            // back at the grace, not waited for.
            let handedBack = worker.output.firstMatch(of: /handed_back_after_ms=(\d+)/).flatMap { Int($0.1) }
            print("SIGTERM: all deliveries back after \(requeued) here, worker exited after \(exited); the worker handed back after \(handedBack.map(String.init) ?? "?") ms")
            #expect(status == 0, "worker output:\n\(worker.output)")
            #expect((handedBack ?? .max) < 4_000, "worker output:\n\(worker.output)")
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 0)
            try await eventually("the draining state recorded") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'draining' AND detail ->> 'reason' = 'SIGTERM'") == 1
            }
        }
    }

    @Test func aSpotNoticeFromTheMetadataService_stopsTheWorkerLikeSIGTERM() async throws {
        try await PodWorld.with(secondsPerImage: 30, requests: Self.mixed) { world in
            var configuration = world.workerConfiguration(pod: "pod-noticed")
            configuration.spotMetadataURL = world.metadataURL
            configuration.spotPollInterval = .milliseconds(100)
            let worker = Task { try await Worker(configuration: configuration, logger: testLogger).run() }
            try await Self.untilComfyStarted(world, 1)
            #expect(await world.spot.polls > 0)
            await world.spot.announceTermination(lead: 2)
            let exit = try await withTimeout(.seconds(20), "the noticed worker") { try await worker.value }
            #expect(exit == .finished)
            try await eventually("all deliveries back in the queue") { try await world.queueDepths() == (6, 0) }
        }
    }

    @Test func anImageReclaimedTwentyTimes_isNeverDeadLettered_andIsFinishedOnce() async throws {
        try await PodWorld.with(secondsPerImage: 30, requests: { checkpoint, _ in [PodWorld.request("unlucky", checkpoint: checkpoint)] }) { world in
            for round in 1...20 {
                await world.spot.clear()
                var configuration = world.workerConfiguration(pod: "pod-\(round)")
                configuration.spotMetadataURL = world.metadataURL
                configuration.spotPollInterval = .milliseconds(50)
                let worker = Task { try await Worker(configuration: configuration, logger: testLogger).run() }
                try await Self.untilComfyStarted(world, round)
                await world.spot.announceTermination(lead: 0)
                #expect(try await withTimeout(.seconds(20), "reclaimed worker \(round)") { try await worker.value } == .finished)
            }
            #expect(try await world.queueDepths() == (1, 0))
            await world.spot.clear()
            await world.comfy.setSecondsPerImage(0.05)
            #expect(try await Worker(configuration: world.workerConfiguration(pod: "pod-last"), logger: testLogger).run() == .finished)
            try await world.expectAllDone(1)
            #expect(try await world.queueDepths() == (0, 0))
        }
    }

    @Test func theUploadServerDownForAWhile_acksNothingMeanwhile_andEverythingIsUploadedAfterwards() async throws {
        try await PodWorld.with(secondsPerImage: 0.2, requests: Self.mixed) { world in
            let worker = Task { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            try await eventually("a first image stored") { try await world.count("SELECT count(*) FROM image_generation_files") >= 1 }
            await world.server.stop()
            let storedBefore = try await world.count("SELECT count(*) FROM image_generation_files")
            // An image generated while the server is away: ComfyUI started one more than was
            // stored, and finished it, so the worker is uploading (and retrying) it now.
            try await eventually("an image generated while the server is down", timeout: .seconds(30)) {
                let started = await world.comfy.started
                let generating = await world.comfy.isGenerating
                return started > storedBefore && !generating
            }
            // None was acked: `image.done` follows the ack, which follows a 2xx.
            #expect(await world.comfy.started > storedBefore)
            #expect(try await world.events("image.done") <= storedBefore)
            _ = try await world.server.start()
            let exit = try await withTimeout(.seconds(90), "the worker") { try await worker.value }
            #expect(exit == .finished)
            try await world.expectAllDone(6)
            #expect(try await world.queueDepths() == (0, 0))
        }
    }

    @Test func anImageThatKeepsFailing_isRetriedWithItsCount_andDeadLetteredAtTheThirdFailure_theHeaderCountingAsTheReasonDoes() async throws {
        try await PodWorld.with(requests: { checkpoint, _ in
            (0..<4).map { PodWorld.request("plain-\($0)", checkpoint: checkpoint) }
                + [TextToImageRequest(requestID: "cursed", checkpoint: checkpoint, positive: "a cat \(DevcloudComfy.workflowErrorMarker)").messageJSON()]
        }) { world in
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 4)
            #expect(try await world.queueDepths() == (0, 1))
            #expect(await world.comfy.started == 4 + 3)
            try await eventually("the item failed after three attempts, with ComfyUI's error") {
                try await world.count("""
                    SELECT count(*) FROM image_generation_queue WHERE request_id = 'cursed' AND status = 'failed' AND attempts = 3
                    AND last_error LIKE 'failed 3 times; last: %shapes cannot be multiplied%'
                    """) == 1
            }
            let headers = try await world.firstDeadLetterHeaders()
            let reason = headers?[BrokerNames.reasonHeader]?.stringValue
            #expect(reason?.hasPrefix("failed 3 times; last: ComfyUI could not run the prompt: RuntimeError: mat1 and mat2 shapes cannot be multiplied") == true)
            // No line break at the end (real ComfyUI sends one), and the header says 3 as the reason does.
            #expect(reason?.hasSuffix("\n") == false)
            #expect(headers?[DeliveryDecision.failuresHeader]?.intValue == 3, "\(String(describing: headers))")
        }
    }

    @Test func aMissingModel_deadLettersOnlyTheImagesThatNeedIt_withTheReason() async throws {
        try await PodWorld.with(models: .init(missing: [PodWorld.lora]), requests: Self.mixed) { world in
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done' AND request_id LIKE 'plain-%'") == 4)
            #expect(try await world.queueDepths().dead == 2)
            try await eventually("the styled items failed, naming the model") {
                try await world.count("SELECT count(*) FROM image_generation_queue WHERE request_id LIKE 'styled-%' AND status = 'failed' AND last_error LIKE '%pod_style.safetensors%404%'") == 2
            }
            try await eventually("asset.failed recorded") { try await world.events("asset.failed") == 1 }
        }
    }

    @Test func aDownloadCutByAKilledPod_isResumedByTheNext_andImagesStartBeforeTheLastModel() async throws {
        // 400 kB/s: the checkpoint takes 5 s, the LoRA 3 s.
        try await PodWorld.with(secondsPerImage: 0.4, models: .init(bytesPerSecond: 400_000), requests: Self.mixed) { world in
            let partial = world.workspace.appendingPathComponent("models/checkpoints/\(PodWorld.checkpoint).partial")
            let first = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: world.workerEnvironment(pod: "pod-cut"))
            try await eventually("a partial checkpoint on disk") {
                ((try? FileManager.default.attributesOfItem(atPath: partial.path))?[.size] as? Int64 ?? 0) > 600_000
            }
            first.signal(SIGKILL)
            _ = await first.wait(timeout: .seconds(10))
            await first.cleanUp()
            let exit = try await withTimeout(.seconds(90), "the next worker") { try await Worker(configuration: world.workerConfiguration(pod: "pod-next"), logger: testLogger).run() }
            #expect(exit == .finished)
            try await world.expectAllDone(6)
            // Events reach pod_events through the recorder, after the worker published them.
            try await eventually("the resumed checkpoint's asset.ready recorded") {
                try await world.count("""
                    SELECT count(*) FROM pod_events WHERE kind = 'asset.ready' AND detail ->> 'filename' = '\(PodWorld.checkpoint)'
                    AND (detail ->> 'resumed_from')::numeric > 600000
                    """) == 1
            }
            try await eventually("the LoRA's asset.ready recorded") {
                try await world.count("""
                    SELECT count(*) FROM pod_events WHERE kind = 'asset.ready' AND provider_pod_id = 'pod-next' AND detail ->> 'filename' = '\(PodWorld.lora)'
                    """) == 1
            }
            // The GPU did not wait for the LoRA: plain images were under way before it arrived.
            #expect(try await world.count("""
                SELECT count(*) FROM pod_events started, pod_events lora
                WHERE started.kind = 'image.started' AND lora.kind = 'asset.ready' AND lora.detail ->> 'filename' = '\(PodWorld.lora)'
                AND started.provider_pod_id = 'pod-next' AND started.id < lora.id
                """) >= 1)
        }
    }
}
