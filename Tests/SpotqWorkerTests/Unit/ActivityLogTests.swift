import Foundation
import SpotqBroker
import SpotqCore
import Testing

@testable import SpotqWorker

/// What the worker's heartbeats say it is doing, and its progress mark: pure, on a clock the
/// test moves (no sleeps).
@Suite("pod worker: the activity heartbeats report")
struct ActivityLogTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func at(_ seconds: TimeInterval) -> Date { start.addingTimeInterval(seconds) }

    @Test func aWorkerStuckOnOneImage_hasItsProgressMarkStillAtItsLastStepForward() {
        var log = ActivityLog(at: at(0))
        log.enter(.waitingForWork, at: at(10))
        log.enter(.generating(item: 7, prompt: nil), at: at(20))
        log.enter(.generating(item: 7, prompt: "p-1"), at: at(21))
        let report = log.report(at: at(2_000))
        #expect(report.activity == .generating)
        #expect(report.itemID == 7 && report.promptID == "p-1")
        // Learning the prompt id is the same activity: it started at 20 s.
        #expect(report.since == at(20))
        // Busy since 20 s with nothing done: the 10 s waiting for work do not count against it.
        #expect(report.progressAt == at(10))
        #expect(at(2_000).timeIntervalSince(report.progressAt) == 1_990)
    }

    @Test func aWorkerWaitingForWork_isNeverBehind_howeverLongTheQueueIsEmpty() {
        var log = ActivityLog(at: at(0))
        log.enter(.waitingForWork, at: at(0))
        let idle = log.report(at: at(36_000))
        #expect(idle.activity == .waitingForWork && idle.since == at(0))
        #expect(idle.progressAt == at(36_000))
        // Work comes after ten hours: its stall clock starts then, not at the last image.
        log.enter(.generating(item: 1, prompt: nil), at: at(36_000))
        #expect(log.report(at: at(36_030)).progressAt == at(36_000))
    }

    @Test func imagesStoredOrGivenUp_moveTheMarkOn_retriedOnesDoNot() {
        var log = ActivityLog(at: at(0))
        log.enter(.generating(item: 1, prompt: nil), at: at(0))
        log.progressed(at: at(14))  // stored
        log.enter(.waitingForWork, at: at(14))
        log.enter(.generating(item: 2, prompt: nil), at: at(14))
        // Item 2 times out and is retried, then item 3 the same: no step forward since 14 s.
        log.enter(.waitingForWork, at: at(1_814))
        log.enter(.generating(item: 3, prompt: nil), at: at(1_814))
        let report = log.report(at: at(3_614))
        #expect(report.progressAt == at(14))
        #expect(report.since == at(1_814))

        #expect(Settlement(decision: .ack).movesForward)
        #expect(Settlement(decision: .deadLetter(reason: "ComfyUI refused the workflow")).movesForward)
        #expect(!Settlement(decision: .retry(failures: 1)).movesForward)
        #expect(!Settlement(decision: .requeue).movesForward)
        #expect(!Settlement(decision: .retry(failures: 1), eventsAfter: [.failed(2, "ComfyUI could not run the prompt", final: false)]).movesForward)
        // Whatever decision dead-letters it, a final failure is the batch moving on.
        #expect(Settlement(decision: .retry(failures: 3), eventsBefore: [.failed(2, "failed 3 times", final: true)]).movesForward)
    }

    @Test func aDownloadWhoseBytesAdvance_isProgress_andOneThatStopsIsNot() {
        var log = ActivityLog(at: at(0))
        log.enter(.waitingForAsset("base.safetensors"), at: at(1))
        log.downloading("base.safetensors", bytes: 0, at: at(1))
        for second in stride(from: 2.0, through: 3_600, by: 1) {
            log.downloading("base.safetensors", bytes: Int64(second) * 1_000_000, at: at(second))
        }
        let busy = log.report(at: at(3_600))
        #expect(busy.activity == .downloading && busy.asset == "base.safetensors" && busy.bytes == 3_600_000_000)
        #expect(busy.since == at(1))
        #expect(busy.progressAt == at(3_600))
        // The same byte count again (a stalled transfer reporting): the mark stays.
        log.downloading("base.safetensors", bytes: 3_600_000_000, at: at(3_700))
        #expect(log.report(at: at(3_700)).progressAt == at(3_600))
        // It lands: progress, and the worker is back to what its loop does.
        log.downloadEnded("base.safetensors", ready: true, at: at(3_800))
        let landed = log.report(at: at(3_800))
        #expect(landed.activity == .waitingForAsset && landed.asset == "base.safetensors" && landed.bytes == nil)
        #expect(landed.progressAt == at(3_800))
    }

    @Test func aDownloadThatFails_isNoProgress() {
        var log = ActivityLog(at: at(0))
        log.enter(.waitingForAsset("lora.safetensors"), at: at(0))
        log.downloading("lora.safetensors", bytes: 0, at: at(0))
        log.downloadEnded("lora.safetensors", ready: false, at: at(50))
        #expect(log.report(at: at(60)) == HeartbeatReport(activity: .waitingForAsset, since: at(0), progressAt: at(0), asset: "lora.safetensors"))
    }

    @Test func generatingOrUploading_isWhatTheWorkerDoes_evenWithADownloadBeside() {
        var log = ActivityLog(at: at(0))
        log.downloading("second.safetensors", bytes: 10, at: at(0))
        log.enter(.generating(item: 5, prompt: "p"), at: at(2))
        #expect(log.report(at: at(3)).activity == .generating)
        log.enter(.uploading(item: 5), at: at(4))
        let uploading = log.report(at: at(5))
        #expect(uploading.activity == .uploading && uploading.itemID == 5 && uploading.since == at(4) && uploading.promptID == nil)
        log.enter(.waitingForWork, at: at(6))
        #expect(log.report(at: at(7)).activity == .downloading)
        log.enter(.draining, at: at(8))
        #expect(log.report(at: at(9)).activity == .draining)
    }

    @Test func whatAHeartbeatCarries_isReadBackByTheRecorderAsItWasMeant() throws {
        let tracker = ActivityTracker(clock: { Date(timeIntervalSince1970: 1_800_000_000.25) })
        tracker.generating(item: 9, prompt: "prompt-9")
        let report = tracker.report()
        let event = SpotqEvent(
            eventKey: "k", kind: .heartbeat, batchID: 1, itemID: report.itemID, pod: SpotqEvent.Pod(provider: "devcloud", id: "p"), detail: report.detail,
            occurredAt: Date(timeIntervalSince1970: 1_800_000_000.5))
        let decoded = try SpotqEvent.decoder.decode(SpotqEvent.self, from: SpotqEvent.encoder.encode(event))
        // occurred_at travels in whole seconds (...00.5 becomes ...00): the report's ...00.25 is not "in the future".
        #expect(try HeartbeatReport.read(decoded).get() == report)
    }
}
