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

/// What real ComfyUI does to a pod that the stand-in reproduces (issue 18's table): faults
/// of the pod are not the items' (handed back, their budget untouched, the breaker pausing
/// and then giving the pod up with exit 5), and a model that cannot load is the model's.
@Suite("pod worker: pod faults, the breaker, and models ComfyUI cannot load")
struct PodFaultTests {
    @Test func aCUDAErrorOnEveryAttempt_isThePodsFault_itsWorkGoesBack_thePodReportsFaulted_andTheWorkerExitsFive() async throws {
        try await PodWorld.with(requests: { checkpoint, _ in
            (0..<4).map { PodWorld.request("plain-\($0)", checkpoint: checkpoint) }
                + [TextToImageRequest(requestID: "cuda", checkpoint: checkpoint, positive: "a cat \(DevcloudComfy.executionErrorMarker)").messageJSON()]
        }) { world in
            var configuration = world.workerConfiguration()
            configuration.podFaultBackoff = RetryBackoff(initial: .milliseconds(300), maximum: .seconds(2), jitter: 0)
            let started = ContinuousClock.now
            let exit = try await withTimeout(.seconds(90), "the worker") { [configuration] in try await Worker(configuration: configuration, logger: testLogger).run() }
            let took = ContinuousClock.now - started
            #expect(exit == .podFaulted && exit.rawValue == 5)
            // Three faults in a row at the end (a plain image between two faults resets the count).
            #expect(await world.comfy.started >= 4 + 3)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 4)
            // Nothing dead-lettered, the item back in the queue with its failure budget untouched.
            #expect(try await world.queueDepths() == (1, 0))
            // Events reach the item's row through the recorder, after the worker published them.
            try await eventually("the item queued again, no failure counted") {
                try await world.count("SELECT count(*) FROM image_generation_queue WHERE request_id = 'cuda' AND status = 'queued' AND attempts = 0") == 1
            }
            // Its copy counts the pod faults it met, apart from its failures (none).
            let headers = try await world.firstHeaders(in: BrokerNames.batchQueue(world.batch))
            let cudaAttempts = await world.comfy.started - 4
            #expect(headers?[DeliveryDecision.podFaultsHeader]?.intValue == Int64(cudaAttempts), "\(String(describing: headers))")
            #expect(headers?[DeliveryDecision.failuresHeader] == nil)
            try await eventually("pod.faulted recorded with the reason") {
                try await world.count("""
                    SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'faulted'
                    AND detail ->> 'reason' LIKE '3 pod faults in a row; last: ComfyUI could not run the prompt: RuntimeError: CUDA error%'
                    """) == 1
            }
            print("CUDA error on every attempt: the worker exited 5 after \(took)")
        }
    }

    @Test func aComfyUIThatDoesNotSeeTheModelFolder_deadLettersNothing_handsTheItemsBack_reportsFaulted_andExitsFive() async throws {
        try await PodWorld.with(models: .init(comfySeesWorkspace: false), requests: WorkerFaultTests.mixed) { world in
            let started = ContinuousClock.now
            let worker = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: world.workerEnvironment(pod: "pod-blind"))
            defer { Task { await worker.cleanUp() } }
            #expect(await worker.wait(timeout: .seconds(60)) == 5, "worker output:\n\(worker.output)")
            let took = ContinuousClock.now - started
            #expect(try await world.queueDepths() == (6, 0))
            #expect(await world.comfy.started == 0)
            try await eventually("pod.faulted recorded, naming the model ComfyUI does not list") {
                try await world.count("""
                    SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'faulted' AND provider_pod_id = 'pod-blind'
                    AND detail ->> 'reason' LIKE 'ComfyUI does not list model \(PodWorld.checkpoint)%does not see the worker''s model folders%'
                    """) == 1
            }
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'failed'") == 0)
            print("ComfyUI not seeing the models: the worker exited 5 after \(took), nothing dead-lettered")
        }
    }

    @Test func aVerifiedModelComfyUIStopsListing_isAPodFault_notARefusalOfTheItemsNeedingIt() async throws {
        try await PodWorld.with(secondsPerImage: 0.5, requests: WorkerFaultTests.mixed) { world in
            var configuration = world.workerConfiguration(pod: "pod-lost-lora")
            configuration.podFaultBackoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(1), jitter: 0)
            let worker = Task { [configuration] in try await Worker(configuration: configuration, logger: testLogger).run() }
            // Verified and listed, then gone from the folder ComfyUI reads (while the plain images run).
            try await eventually("the LoRA ready") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'asset.ready' AND detail ->> 'filename' = '\(PodWorld.lora)'") == 1
            }
            try FileManager.default.removeItem(at: world.workspace.appendingPathComponent("models/loras/\(PodWorld.lora)"))
            let exit = try await withTimeout(.seconds(90), "the worker") { try await worker.value }
            // ComfyUI's value_not_in_list for a file the worker verified: not the items' fault.
            #expect(exit == .podFaulted)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done' AND request_id LIKE 'plain-%'") == 4)
            #expect(try await world.queueDepths() == (2, 0))
            try await eventually("the styled items queued again, no failure counted") {
                try await world.count("SELECT count(*) FROM image_generation_queue WHERE request_id LIKE 'styled-%' AND status = 'queued' AND attempts = 0") == 2
            }
            try await eventually("pod.faulted recorded, naming the LoRA") {
                try await world.count("""
                    SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'faulted'
                    AND detail ->> 'reason' LIKE '3 pod faults in a row; last: ComfyUI does not list model \(PodWorld.lora), which this pod verified on disk%'
                    """) == 1
            }
        }
    }

    @Test func aWorkspaceTheWorkerCannotWriteModelsTo_isAPodFault_notAFailureOfTheModel() async throws {
        try await PodWorld.with(requests: WorkerFaultTests.mixed) { world in
            // Where the LoRAs folder should be, a file: creating the folder fails, as on a broken disk.
            let models = world.workspace.appendingPathComponent("models")
            try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
            try Data("not a folder".utf8).write(to: models.appendingPathComponent("loras"))
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(pod: "pod-bad-disk"), logger: testLogger).run() }
            #expect(exit == .podFaulted)
            // No styled item dead-lettered for the LoRA; whatever was not done is back in the queue.
            let (ready, dead) = try await world.queueDepths()
            let done = try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'")
            #expect(dead == 0 && ready + done == 6, "ready \(ready), dead \(dead), done \(done)")
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE request_id LIKE 'styled-%' AND status = 'done'") == 0)
            #expect(try await world.events("asset.failed") == 0)
            try await eventually("pod.faulted recorded: the workspace") {
                try await world.count("""
                    SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'faulted' AND detail ->> 'reason' LIKE 'cannot create the model folders in the workspace%'
                    """) == 1
            }
        }
    }

    @Test func aLoRAThatCannotLoad_isTheModelsFault_failsOnlyTheItemsNeedingIt_afterOneExecution() async throws {
        try await PodWorld.with(requests: WorkerFaultTests.mixed) { world in
            await world.comfy.setUnloadable([PodWorld.lora])
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done' AND request_id LIKE 'plain-%'") == 4)
            #expect(try await world.queueDepths() == (0, 2))
            // One execution failed to load it; the other styled item was not tried at all.
            #expect(await world.comfy.started == 4 + 1)
            try await eventually("the styled items failed naming the model, once each") {
                try await world.count("""
                    SELECT count(*) FROM image_generation_queue WHERE request_id LIKE 'styled-%' AND status = 'failed' AND attempts = 1
                    AND last_error = 'model \(PodWorld.lora) is unavailable: ComfyUI cannot load it: safetensors._safetensors_rust.SafetensorError: Error while deserializing header: header too large'
                    """) == 2
            }
            try await eventually("asset.failed recorded for the load") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'asset.failed' AND detail ->> 'filename' = '\(PodWorld.lora)' AND detail ->> 'stage' = 'load'") == 1
            }
            #expect(try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'faulted'") == 0)
        }
    }

    @Test func comfyUIDownWhileTheModelsDownload_isAPodFault_deadLettersNothing_andExitsFive() async throws {
        // 400 kB/s: the checkpoint takes 5 s, the LoRA 3 s.
        try await PodWorld.with(models: .init(bytesPerSecond: 400_000), requests: WorkerFaultTests.mixed) { world in
            var configuration = world.workerConfiguration(pod: "pod-comfy-down")
            configuration.podFaultBackoff = RetryBackoff(initial: .milliseconds(500), maximum: .seconds(2), jitter: 0)
            let worker = Task { try await Worker(configuration: configuration, logger: testLogger).run() }
            // ComfyUI answered at the start, then dies while the checkpoint downloads.
            try await eventually("the worker generating (ComfyUI was up)", timeout: .seconds(30)) {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'generating' AND provider_pod_id = 'pod-comfy-down'") == 1
            }
            await world.comfyServer.stop()
            let exit = try await withTimeout(.seconds(90), "the worker") { try await worker.value }
            #expect(exit == .podFaulted)
            #expect(try await world.queueDepths() == (6, 0))
            try await eventually("pod.faulted recorded: ComfyUI unreachable") {
                try await world.count("""
                    SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'faulted' AND detail ->> 'reason' LIKE '3 pod faults in a row; last: ComfyUI unreachable (POST /prompt)%'
                    """) == 1
            }
            // The worker's last event is recorded, so any failure it reported is too: none.
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'failed' OR attempts > 0") == 0)
            // By when they were recorded: an event's own time is in whole seconds.
            let spread = try await world.fixture.postgres.query("""
                SELECT extract(epoch FROM max(recorded_at) - min(recorded_at))::float8 FROM pod_events WHERE kind = 'image.interrupted' AND detail ->> 'pod_fault' = 'true'
                """)[0].decode(Double?.self, at: 0) ?? 0
            // Paused 0.5 s, then 1 s between the three faults: not 18 failures in 0.25 s.
            #expect(spread >= 1.3, "the faults came \(spread) s apart")
            print("ComfyUI down while the models download: three pod faults over \(spread) s, then exit 5")
        }
    }

    @Test func aComfyUIBackAfterAnOutage_isFoundByTheBreakersBackoff_andASuccessResetsIt() async throws {
        try await PodWorld.with(secondsPerImage: 1, requests: WorkerFaultTests.mixed) { world in
            var configuration = world.workerConfiguration(pod: "pod-outage")
            configuration.podFaultLimit = 4
            configuration.podFaultBackoff = RetryBackoff(initial: .milliseconds(500), maximum: .seconds(2), jitter: 0)
            let worker = Task { try await Worker(configuration: configuration, logger: testLogger).run() }
            @Sendable func faults() async throws -> Int {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'image.interrupted' AND detail ->> 'pod_fault' = 'true'")
            }
            // Two outages of two or three faults each: four or more in all, the limit, but never four in a row.
            var stored = 0
            for outage in 1...2 {
                let storedBefore = stored
                try await eventually("an image stored before outage \(outage)", timeout: .seconds(60)) {
                    try await world.count("SELECT count(*) FROM image_generation_files") > storedBefore
                }
                let before = try await faults()
                await world.comfyServer.stop()
                try await eventually("two pod faults in outage \(outage)", timeout: .seconds(90)) { try await faults() >= before + 2 }
                _ = try await world.comfyServer.start()
                stored = try await world.count("SELECT count(*) FROM image_generation_files")
            }
            let exit = try await withTimeout(.seconds(90), "the worker") { try await worker.value }
            #expect(exit == .finished)
            try await world.expectAllDone(6)
            #expect(try await world.queueDepths() == (0, 0))
            // Its last event (draining, the batch finished) is recorded, so all before it are.
            try await eventually("the worker's last event recorded") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'draining' AND provider_pod_id = 'pod-outage'") == 1
            }
            #expect(try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'faulted'") == 0)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE attempts > 0") == 0)
            #expect(try await faults() >= 4)
            let gaps = try await world.fixture.postgres.query("""
                SELECT extract(epoch FROM recorded_at - lag(recorded_at) OVER (ORDER BY id))::float8 FROM pod_events
                WHERE kind = 'image.interrupted' AND detail ->> 'pod_fault' = 'true' ORDER BY id
                """).compactMap { try $0.decode(Double?.self, at: 0) }
            // The second fault waited out the first pause (0.5 s), by when each was recorded.
            #expect(gaps.first.map { $0 >= 0.4 } == true, "gaps between pod faults: \(gaps)")
            print("ComfyUI back after two outages: gaps between pod faults \(gaps) s; the batch finished")
        }
    }
}
