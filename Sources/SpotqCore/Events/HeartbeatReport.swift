import Foundation

/// What a `pod.heartbeat` says about its worker, besides that it lives: its activity, since
/// when, and its progress mark. In the event's `detail` (the item in the event's `item_id`):
///
/// ```json
/// {"activity": "generating", "activity_since": "2026-12-03T15:00:00.250Z",
///  "progress_at": "2026-12-03T14:59:58.000Z", "prompt_id": "…"}
/// ```
///
/// `progress_at` is the last time the worker moved forward (an item settled for good, a
/// model ready, download bytes advancing), with the time it spent waiting for work added:
/// `now - progress_at` is how long it has been busy without getting anywhere. A heartbeat
/// without `activity` is a plain sign of life (stall not judged); one whose fields are bad is
/// refused, not trusted (``read(_:)``). The recorder keeps its times on its own clock
/// (``onRecorderClock(sentAt:receivedAt:)``).
public struct HeartbeatReport: Sendable, Equatable {
    public var activity: WorkerActivity
    /// When the worker entered ``activity``.
    public var since: Date
    public var progressAt: Date
    /// The item generated or uploaded (the event's `item_id`).
    public var itemID: Int64?
    /// ComfyUI's prompt id while generating.
    public var promptID: String?
    /// The model downloaded or waited for.
    public var asset: String?
    /// Bytes of ``asset`` on disk so far, while downloading.
    public var bytes: Int64?

    public init(
        activity: WorkerActivity, since: Date, progressAt: Date, itemID: Int64? = nil, promptID: String? = nil, asset: String? = nil, bytes: Int64? = nil
    ) {
        self.activity = activity
        self.since = since
        self.progressAt = progressAt
        self.itemID = itemID
        self.promptID = promptID
        self.asset = asset
        self.bytes = bytes
    }

    /// An event's `occurred_at` is sent in whole seconds: a time in its report may be up to
    /// this much after it without the pod contradicting itself.
    static let sendTimeRounding: TimeInterval = 1
    /// A pod's clock (or a heartbeat's wait in the broker) off by more than this from the
    /// recorder's is corrected (``onRecorderClock(sentAt:receivedAt:)``); less is left as it is.
    public static let clockCorrectionAfterSeconds: TimeInterval = 60
    static let maxTextLength = 255

    /// The heartbeat's `detail` (the item goes in the event's `item_id`).
    public var detail: [String: JSONScalar] {
        var detail: [String: JSONScalar] = [
            "activity": .string(activity.rawValue), "activity_since": .string(Self.format(since)), "progress_at": .string(Self.format(progressAt)),
        ]
        if let promptID { detail["prompt_id"] = .string(promptID) }
        if let asset { detail["asset"] = .string(asset) }
        if let bytes { detail["bytes"] = .number(Double(bytes)) }
        return detail
    }

    /// Why a heartbeat's report cannot be believed.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// The report `event` (a heartbeat) carries: nil when it carries none (a plain sign of
    /// life); a refusal for an unknown activity, a missing or unreadable time, a time in the
    /// future (after the heartbeat's own `occurred_at`), or absurd numbers. Judged on the
    /// pod's own clock, so neither its skew nor a wait in the broker makes a report a lie.
    public static func read(_ event: SpotqEvent) -> Result<HeartbeatReport?, Refusal> {
        let detail = event.detail
        guard let activityValue = detail["activity"] else { return .success(nil) }
        func refuse(_ reason: String) -> Result<HeartbeatReport?, Refusal> { .failure(Refusal(description: "heartbeat refused: \(reason)")) }
        guard let text = activityValue.stringValue, let activity = WorkerActivity(rawValue: text) else {
            return refuse("unknown activity \(Self.quoted(activityValue)) (known: \(WorkerActivity.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var times: [Date] = []
        for key in ["activity_since", "progress_at"] {
            guard let value = detail[key]?.stringValue, let time = Self.parse(value) else {
                return refuse("\(key) is \(detail[key].map(Self.quoted) ?? "missing"), not an ISO-8601 time")
            }
            guard time.timeIntervalSince(event.occurredAt) <= sendTimeRounding else {
                return refuse("\(key) \(value) is in the future: \(Int(time.timeIntervalSince(event.occurredAt))) s after the heartbeat's own occurred_at")
            }
            times.append(time)
        }
        var report = HeartbeatReport(activity: activity, since: times[0], progressAt: times[1], itemID: event.itemID)
        for key in ["prompt_id", "asset"] {
            guard let value = detail[key] else { continue }
            guard let text = value.stringValue, !text.isEmpty, text.count <= maxTextLength else {
                return refuse("\(key) must be a text of 1 to \(maxTextLength) characters")
            }
            if key == "prompt_id" { report.promptID = text } else { report.asset = text }
        }
        if let value = detail["bytes"] {
            guard case .number(let number) = value, number.isFinite, number >= 0, number < 1e15, number == number.rounded() else {
                return refuse("bytes must be a whole number of bytes, 0 or more")
            }
            report.bytes = Int64(number)
        }
        if let item = event.itemID, item <= 0 { return refuse("item_id \(item) is not an item") }
        return .success(report)
    }

    /// The report on the recorder's clock: when the heartbeat's `occurred_at` (`sentAt`, the
    /// pod's clock) is more than ``clockCorrectionAfterSeconds`` from `receivedAt`, its times
    /// move by the difference, so a pod whose clock runs an hour behind is not taken for an
    /// hour stalled (nor one ahead for busy). A heartbeat that waited that long in the broker
    /// looks that much fresher; the provisioner judges no stall while events wait unrecorded.
    public func onRecorderClock(sentAt: Date, receivedAt: Date) -> HeartbeatReport {
        let offset = receivedAt.timeIntervalSince(sentAt)
        guard abs(offset) > Self.clockCorrectionAfterSeconds else { return self }
        var report = self
        report.since = min(since.addingTimeInterval(offset), receivedAt)
        report.progressAt = min(progressAt.addingTimeInterval(offset), receivedAt)
        return report
    }

    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    static func parse(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)) ?? (try? Date.ISO8601FormatStyle().parse(text))
    }

    static func quoted(_ value: JSONScalar) -> String {
        switch value {
        case .string(let text): "'\(text.prefix(60))'"
        case .number(let number): "\(number)"
        case .bool(let flag): "\(flag)"
        case .null: "null"
        }
    }
}
