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
    /// The model file each loader node names (`ckpt_name`, `lora_name`), by node id: an
    /// execution error in that node is blamed on that file.
    var modelOfNode: [String: String] = [:]

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
        for (id, value) in workflow {
            // Real ComfyUI answers such a prompt with a bare 500, which would read as the pod's fault.
            guard let node = value as? [String: Any] else { throw Invalid(description: "the workflow's node \(id) is not a JSON object") }
            let inputs = node["inputs"] as? [String: Any] ?? [:]
            if let file = AttemptFault.modelInputs.lazy.compactMap({ inputs[$0] as? String }).first { modelOfNode[id] = file }
        }
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
