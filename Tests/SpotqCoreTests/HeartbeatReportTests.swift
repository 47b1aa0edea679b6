import Foundation
import SpotqCore
import Testing

/// What a heartbeat may say about its worker, and what the recorder refuses to believe.
@Suite("events: what a heartbeat reports")
struct HeartbeatReportTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func heartbeat(_ detail: [String: JSONScalar], item: Int64? = nil) -> SpotqEvent {
        SpotqEvent(eventKey: "k", kind: .heartbeat, batchID: 7, itemID: item, pod: SpotqEvent.Pod(provider: "runpod", id: "p"), detail: detail, occurredAt: now)
    }

    @Test func aReport_travelsInTheDetail_andIsReadBackWhole() throws {
        let report = HeartbeatReport(
            activity: .downloading, since: now.addingTimeInterval(-30.5), progressAt: now.addingTimeInterval(-0.25), asset: "base.safetensors", bytes: 6_938_041_856)
        let read = try HeartbeatReport.read(heartbeat(report.detail)).get()
        #expect(read == report)
        #expect(report.detail["activity"] == .string("downloading"))
        let generating = HeartbeatReport(activity: .generating, since: now, progressAt: now, itemID: 12, promptID: "0b7c")
        #expect(try HeartbeatReport.read(heartbeat(generating.detail, item: 12)).get() == generating)
    }

    @Test func aHeartbeatWithoutAnActivity_isAPlainSignOfLife() throws {
        #expect(try HeartbeatReport.read(heartbeat([:])).get() == nil)
    }

    @Test func badOrAbsurdFields_areRefusedWithTheirReason() {
        let since = JSONScalar.string("2027-01-15T08:00:00Z")  // now is 2027-01-15T08:00:00Z
        let cases: [([String: JSONScalar], Int64?, String)] = [
            (["activity": .string("mining"), "activity_since": since, "progress_at": since], nil, "unknown activity 'mining'"),
            (["activity": .number(3), "activity_since": since, "progress_at": since], nil, "unknown activity 3.0"),
            (["activity": .string("generating"), "progress_at": since], nil, "activity_since is missing"),
            (["activity": .string("generating"), "activity_since": .string("yesterday"), "progress_at": since], nil, "activity_since is 'yesterday', not an ISO-8601 time"),
            (["activity": .string("generating"), "activity_since": since, "progress_at": .string("2027-01-15T09:00:00Z")], nil, "progress_at 2027-01-15T09:00:00Z is in the future: 3600 s after the heartbeat's own occurred_at"),
            (["activity": .string("downloading"), "activity_since": since, "progress_at": since, "bytes": .number(-1)], nil, "bytes must be a whole number"),
            (["activity": .string("downloading"), "activity_since": since, "progress_at": since, "asset": .string(String(repeating: "a", count: 300))], nil, "asset must be a text of 1 to 255"),
            (["activity": .string("generating"), "activity_since": since, "progress_at": since], -4, "item_id -4 is not an item"),
        ]
        for (detail, item, reason) in cases {
            guard case .failure(let refusal) = HeartbeatReport.read(heartbeat(detail, item: item)) else {
                Issue.record("believed: \(detail)")
                continue
            }
            #expect(refusal.description.hasPrefix("heartbeat refused: "))
            #expect(refusal.description.contains(reason), "\(refusal.description)")
        }
    }

    @Test func aPodsClockFarOff_isCorrectedOnTheRecordersClock_aFewSecondsOffAreLeftAlone() throws {
        // The pod's clock runs an hour behind: its heartbeat says it was sent at 07:00, progress 07:00 - 100 s.
        let behind = now.addingTimeInterval(-3_600)
        var event = heartbeat(HeartbeatReport(activity: .generating, since: behind.addingTimeInterval(-50), progressAt: behind.addingTimeInterval(-100)).detail)
        event.occurredAt = behind
        let stated = try #require(try HeartbeatReport.read(event).get())
        let recorded = stated.onRecorderClock(sentAt: behind, receivedAt: now)
        #expect(recorded.progressAt == now.addingTimeInterval(-100) && recorded.since == now.addingTimeInterval(-50), "100 s without progress, not an hour")
        // An hour ahead: not a pod that just moved on.
        let ahead = HeartbeatReport(activity: .generating, since: now.addingTimeInterval(3_000), progressAt: now.addingTimeInterval(2_000))
        #expect(ahead.onRecorderClock(sentAt: now.addingTimeInterval(3_600), receivedAt: now).progressAt == now.addingTimeInterval(-1_600))
        // Lag and rounding (a few seconds): as the pod said.
        let near = HeartbeatReport(activity: .uploading, since: now.addingTimeInterval(-10), progressAt: now.addingTimeInterval(-20))
        #expect(near.onRecorderClock(sentAt: now.addingTimeInterval(-3), receivedAt: now) == near)
    }

    @Test func theActivities_keepTheNamesMigration0019Checks() {
        #expect(WorkerActivity.allCases.map(\.rawValue) == ["starting", "waiting_for_work", "downloading", "waiting_for_asset", "generating", "uploading", "draining"])
    }
}
