import Foundation

/// How a call to ComfyUI went wrong, as ComfyUI said it (or did not): what ``AttemptFault``
/// needs to decide whose fault an attempt's failure is. The description is one line, safe
/// to log and to keep as an item's `last_error`.
enum ComfyFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// No answer: connection refused, reset, timed out (`what` names the call).
    case unreachable(what: String, error: String)
    /// A 5xx answer (real ComfyUI answers 500 for a prompt that is not well-formed JSON
    /// objects; the worker checks the workflow's shape before it sends one).
    case serverError(what: String, status: Int)
    /// An answer that is neither success nor one of ComfyUI's refusals (a 404, no prompt id).
    case unexpectedAnswer(what: String, status: Int)
    /// ComfyUI refused the workflow (400), or part of it (200 with `node_errors`).
    case refused(ComfyRefusal)
    /// The prompt ran and failed: an `execution_error` in its history.
    case executionError(ExecutionError)
    /// The prompt was interrupted, and not by this worker.
    case interruptedInComfy(nodeType: String?)
    /// Neither queued nor in the history: ComfyUI restarted or its queue was cleared.
    case lost(promptID: String)
    /// Still not finished at the generation timeout.
    case timedOut(promptID: String, limit: Duration)
    /// Finished without saving an image (e.g. only a PreviewImage output).
    case noImage(promptID: String)
    /// The history names an output `GET /view` does not give.
    case outputUnavailable(filename: String, status: Int)

    /// An `execution_error` message of a prompt's history.
    struct ExecutionError: Sendable, Equatable {
        var nodeID: String?
        var nodeType: String?
        var exceptionType: String
        var message: String
    }

    var description: String {
        switch self {
        case .unreachable(let what, let error): "ComfyUI unreachable (\(what)): \(error)"
        case .serverError(let what, let status): "ComfyUI answered \(status) to \(what)"
        case .unexpectedAnswer(let what, let status): "ComfyUI answered \(status) to \(what)"
        case .refused(let refusal): refusal.description
        case .executionError(let error):
            "ComfyUI could not run the prompt: \(error.exceptionType): \(error.message)" + (error.nodeType.map { " (node \(error.nodeID ?? "?") \($0))" } ?? "")
        case .interruptedInComfy(let nodeType): "ComfyUI interrupted the prompt" + (nodeType.map { " at \($0)" } ?? "")
        case .lost(let id): "ComfyUI no longer has prompt \(id): neither queued nor in its history (ComfyUI restarted?)"
        case .timedOut(let id, let limit): "ComfyUI did not finish prompt \(id) within \(limit)"
        case .noImage(let id): "ComfyUI finished prompt \(id) without saving an image"
        case .outputUnavailable(let filename, let status): "ComfyUI answered \(status) for image \(filename)"
        }
    }
}

/// ComfyUI's refusal of a workflow, read from its answer: the error, and each node's errors
/// (real ComfyUI puts the cause only there: `details` is empty for
/// `prompt_outputs_failed_validation`).
struct ComfyRefusal: Sendable, Equatable, CustomStringConvertible {
    struct NodeError: Sendable, Equatable {
        var node: String
        var classType: String
        var type: String?
        var inputName: String?
        var receivedValue: String?
        var message: String?
    }

    var type: String?
    var message: String?
    var details: String?
    var nodeErrors: [NodeError]
    /// True for a 200 whose `node_errors` is not empty (ComfyUI ran the valid outputs).
    var partly = false

    init(type: String? = nil, message: String? = nil, details: String? = nil, nodeErrors: [NodeError] = [], partly: Bool = false) {
        self.type = type
        self.message = message
        self.details = details
        self.nodeErrors = nodeErrors
        self.partly = partly
    }

    /// Reads `{"error": {...}, "node_errors": {...}}`.
    init(answer object: [String: Any]?, partly: Bool = false) {
        let error = object?["error"] as? [String: Any]
        var nodeErrors: [NodeError] = []
        let nodes = (object?["node_errors"] as? [String: Any]) ?? [:]
        for (node, value) in nodes.sorted(by: { $0.key < $1.key }) {
            let entry = value as? [String: Any]
            let classType = entry?["class_type"] as? String ?? "?"
            for case let cause as [String: Any] in (entry?["errors"] as? [Any]) ?? [] {
                let extra = cause["extra_info"] as? [String: Any]
                let details = (cause["details"] as? String).map(Self.trimmed).flatMap { $0.isEmpty ? nil : $0 }
                nodeErrors.append(NodeError(
                    node: node, classType: classType, type: cause["type"] as? String, inputName: extra?["input_name"] as? String,
                    receivedValue: extra?["received_value"] as? String, message: details ?? (cause["message"] as? String).map(Self.trimmed)))
            }
        }
        self.init(type: error?["type"] as? String, message: error?["message"] as? String, details: error?["details"] as? String, nodeErrors: nodeErrors, partly: partly)
    }

    /// One line: the error's type and message, its details when it has any, and each node
    /// error, e.g. `node 4 CheckpointLoaderSimple: ckpt_name: value_not_in_list: ckpt_name: 'x'
    /// not in ['y']`; at most 2,000 characters.
    var reason: String {
        var text = [type, message].compactMap { $0 }.map(Self.trimmed).joined(separator: ": ")
        if let details, !Self.trimmed(details).isEmpty { text += " (\(Self.trimmed(details)))" }
        let causes = nodeErrors.map { cause in
            "node \(cause.node) \(cause.classType): " + [cause.inputName, cause.type, cause.message].compactMap { $0 }.joined(separator: ": ")
        }
        if !causes.isEmpty { text += (text.isEmpty ? "" : "; ") + causes.joined(separator: "; ") }
        return String((text.isEmpty ? "no reason given" : text).prefix(2_000))
    }

    var description: String { (partly ? "ComfyUI refused part of the workflow: " : "ComfyUI refused the workflow: ") + reason }

    /// Whitespace and line breaks at the ends dropped (real ComfyUI's messages end in "\n").
    static func trimmed(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }
}
