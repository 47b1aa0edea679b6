import Foundation

/// Gives every output node of a workflow a file name prefix of this attempt's own
/// (`<prefix>_<attempt>`), before it goes to ComfyUI.
///
/// ComfyUI caches node outputs: the same graph sent again runs nothing and names the files
/// the earlier run wrote. The worker deletes each image once it is stored, so a second
/// attempt at an item on the same pod (an ack lost after the upload) or a second item with
/// the very same graph would be handed a file that is gone. With a prefix of its own only
/// the saving node runs again (its upstream stays cached: no GPU time), and writes a new file.
enum OutputPrefixes {
    struct Unreadable: Error, CustomStringConvertible {
        var description: String
    }

    /// The workflow with `_<attempt>` after every string `filename_prefix` input; numbers and
    /// strings come back as they were (JSONSerialization keeps 64-bit seeds whole).
    static func unique(_ workflowJSON: String, attempt: String) throws -> String {
        guard var nodes = (try? JSONSerialization.jsonObject(with: Data(workflowJSON.utf8))) as? [String: Any] else {
            throw Unreadable(description: "the workflow is not a JSON object")
        }
        var changed = false
        for (id, value) in nodes {
            guard var node = value as? [String: Any], var inputs = node["inputs"] as? [String: Any],
                  let prefix = inputs["filename_prefix"] as? String else { continue }
            inputs["filename_prefix"] = "\(prefix)_\(attempt)"
            node["inputs"] = inputs
            nodes[id] = node
            changed = true
        }
        guard changed else { return workflowJSON }
        let data = try JSONSerialization.data(withJSONObject: nodes, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
