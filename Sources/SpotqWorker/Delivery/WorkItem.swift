import Foundation

/// A work message as the planner publishes it (README, "Planning batches"), read by the pod.
struct WorkItem: Sendable {
    var batchID: Int64
    var itemID: Int64
    var requestID: String
    var checkpoint: String
    var loras: [String]
    /// The ComfyUI workflow, as JSON text.
    var workflowJSON: String

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    init(body: [UInt8]) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw Invalid(description: "the work message is not a JSON object")
        }
        guard object["version"] as? Int == 1 else { throw Invalid(description: "unknown work message version \(object["version"] ?? "none")") }
        guard let batch = (object["batch_id"] as? NSNumber)?.int64Value, let item = (object["item_id"] as? NSNumber)?.int64Value,
              let requestID = object["request_id"] as? String, let checkpoint = object["checkpoint"] as? String,
              let workflow = object["workflow"] as? [String: Any]
        else { throw Invalid(description: "the work message lacks batch_id, item_id, request_id, checkpoint or workflow") }
        batchID = batch
        itemID = item
        self.requestID = requestID
        self.checkpoint = checkpoint
        loras = ((object["loras"] as? [[String: Any]]) ?? []).compactMap { $0["file"] as? String }
        workflowJSON = String(decoding: try JSONSerialization.data(withJSONObject: workflow), as: UTF8.self)
    }
}

extension WorkItem {
    /// What the delivery rules need of it.
    var order: WorkDeliveryMachine.WorkOrder {
        WorkDeliveryMachine.WorkOrder(itemID: itemID, models: [checkpoint] + loras)
    }

    /// The body read as a work item, or why it is not one.
    static func read(_ body: [UInt8]) -> Result<WorkItem, WorkDeliveryMachine.Unreadable> {
        do {
            return .success(try WorkItem(body: body))
        } catch {
            return .failure(WorkDeliveryMachine.Unreadable(reason: "\(error)"))
        }
    }
}
