import CurlClient
import Foundation
import Logging

/// ComfyUI over its HTTP API: submit a prompt, wait for its history, fetch its images.
struct ComfyClient: Sendable {
    let baseURL: String
    let http: HTTPClient

    /// ComfyUI refused the workflow (HTTP 400): the same workflow will always be refused.
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    /// ComfyUI failed in a way that may pass (unreachable, execution error, timeout).
    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    struct Image: Sendable {
        var filename: String
        var data: Data
    }

    /// Waits until `GET /system_stats` answers (ComfyUI starts slowly).
    func waitUntilUp(limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while true {
            if let answer = try? await http.send(HTTPRequest(url: baseURL + "/system_stats", timeout: .seconds(5))), answer.status == 200 { return }
            guard ContinuousClock.now < deadline else { throw Failed(description: "ComfyUI at \(baseURL) did not answer within \(limit)") }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Submits `workflow` (API format, as JSON text) and returns ComfyUI's prompt id.
    func submit(workflowJSON: String, promptID: String) async throws -> String {
        let body = #"{"prompt": \#(workflowJSON), "client_id": "spotq-worker", "prompt_id": "\#(promptID)"}"#
        let answer: HTTPResponse
        do {
            answer = try await http.send(HTTPRequest(method: .post, url: baseURL + "/prompt", headers: ["Content-Type": "application/json"], body: Array(body.utf8), timeout: .seconds(60)))
        } catch {
            throw Failed(description: "ComfyUI unreachable: \(error)")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
        if answer.status == 400 {
            throw Refused(description: "ComfyUI refused the workflow: \(Self.describeError(object))")
        }
        guard answer.status == 200, let id = object?["prompt_id"] as? String else {
            throw Failed(description: "ComfyUI answered \(answer.status) to /prompt")
        }
        if let nodeErrors = object?["node_errors"] as? [String: Any], !nodeErrors.isEmpty {
            // Real ComfyUI runs the valid outputs of a partly valid prompt: stop it, or the
            // next item queues behind work nobody will collect.
            await abandon(promptID: id)
            throw Refused(description: "ComfyUI refused part of the workflow: \(Self.describeError(object))")
        }
        return id
    }

    /// Polls `/history/{id}` until the prompt finished; returns its images. A prompt that is
    /// in neither the history nor the queue was lost (ComfyUI restarted, or its queue was
    /// cleared): that fails at once instead of waiting out `limit`.
    func waitForImages(promptID: String, limit: Duration) async throws -> [Image] {
        let deadline = ContinuousClock.now + limit
        while true {
            guard ContinuousClock.now < deadline else {
                await abandon(promptID: promptID)
                throw Failed(description: "ComfyUI did not finish prompt \(promptID) within \(limit)")
            }
            guard let entry = await historyEntry(promptID) else {
                // Real ComfyUI queues a prompt before it answers /prompt and writes its history
                // before it leaves the queue. The prompt may finish between the two reads, so
                // the history is read once more after the queue: missing from the queue and
                // then from the history, it is lost.
                if await isLost(promptID) {
                    if await historyEntry(promptID) != nil { continue }
                    throw Failed(description: "ComfyUI no longer has prompt \(promptID): neither queued nor in its history (ComfyUI restarted?)")
                }
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            let status = entry["status"] as? [String: Any]
            guard status?["status_str"] as? String == "success" else {
                throw Failed(description: "ComfyUI could not run the prompt: \(Self.describeMessages(status))")
            }
            var images: [Image] = []
            for case let (_, output as [String: Any]) in (entry["outputs"] as? [String: Any]) ?? [:] {
                for image in (output["images"] as? [[String: Any]]) ?? [] where (image["type"] as? String) == "output" {
                    guard let filename = image["filename"] as? String else { continue }
                    let subfolder = image["subfolder"] as? String ?? ""
                    let query = "filename=\(Self.encode(filename))&subfolder=\(Self.encode(subfolder))&type=output"
                    let view = try await http.send(HTTPRequest(url: baseURL + "/view?" + query, timeout: .seconds(60)))
                    guard view.status == 200 else { throw Failed(description: "ComfyUI answered \(view.status) for image \(filename)") }
                    images.append(Image(filename: filename, data: Data(view.body)))
                }
            }
            guard !images.isEmpty else { throw Failed(description: "ComfyUI finished prompt \(promptID) without saving an image") }
            return images
        }
    }

    /// Asks ComfyUI to drop the prompt it is running (`POST /interrupt`); best effort, one second.
    func interrupt() async {
        _ = try? await http.send(HTTPRequest(method: .post, url: baseURL + "/interrupt", timeout: .seconds(1)))
    }

    /// Walks away from `promptID` without leaving it to run: deleted from the queue if it
    /// waits there, interrupted if it runs (by its id, so another prompt is left alone). Best
    /// effort: real ComfyUI's interrupt is cooperative and lands at the next node or step.
    func abandon(promptID: String) async {
        let json: HTTPHeaders = ["Content-Type": "application/json"]
        _ = try? await http.send(HTTPRequest(method: .post, url: baseURL + "/queue", headers: json, body: Array(#"{"delete": ["\#(promptID)"]}"#.utf8), timeout: .seconds(2)))
        _ = try? await http.send(HTTPRequest(method: .post, url: baseURL + "/interrupt", headers: json, body: Array(#"{"prompt_id": "\#(promptID)"}"#.utf8), timeout: .seconds(2)))
    }

    /// The prompt's `/history` entry; nil while it has none (or ComfyUI does not answer).
    func historyEntry(_ promptID: String) async -> [String: Any]? {
        guard let answer = try? await http.send(HTTPRequest(url: baseURL + "/history/\(promptID)", timeout: .seconds(30))), answer.status == 200 else { return nil }
        return ((try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any])?[promptID] as? [String: Any]
    }

    /// True when `GET /queue` answers and lists `promptID` neither running nor pending.
    func isLost(_ promptID: String) async -> Bool {
        guard let answer = try? await http.send(HTTPRequest(url: baseURL + "/queue", timeout: .seconds(10))), answer.status == 200,
              let queue = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
        else { return false }
        let rows = ((queue["queue_running"] as? [[Any]]) ?? []) + ((queue["queue_pending"] as? [[Any]]) ?? [])
        return !rows.contains { $0.count > 1 && ($0[1] as? String) == promptID }
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    /// ComfyUI's refusal as one line: the error's type and message, its details when it has
    /// any, and each node error (real ComfyUI puts the cause only there: `details` is empty for
    /// `prompt_outputs_failed_validation`), e.g. `node 4 CheckpointLoaderSimple: ckpt_name:
    /// value_not_in_list: ckpt_name: 'x' not in ['y']`.
    static func describeError(_ object: [String: Any]?) -> String {
        let error = object?["error"] as? [String: Any]
        var text = [error?["type"] as? String, error?["message"] as? String].compactMap { $0 }.map(trimmed).joined(separator: ": ")
        if let details = error?["details"] as? String, !trimmed(details).isEmpty { text += " (\(trimmed(details)))" }
        let nodeErrors = (object?["node_errors"] as? [String: Any]) ?? [:]
        var causes: [String] = []
        for (node, value) in nodeErrors.sorted(by: { $0.key < $1.key }) {
            let entry = value as? [String: Any]
            let classType = entry?["class_type"] as? String ?? "?"
            for case let cause as [String: Any] in (entry?["errors"] as? [Any]) ?? [] {
                let input = (cause["extra_info"] as? [String: Any])?["input_name"] as? String
                let parts = [input, cause["type"] as? String, (cause["details"] as? String).map(trimmed).flatMap { $0.isEmpty ? nil : $0 } ?? (cause["message"] as? String).map(trimmed)]
                causes.append("node \(node) \(classType): " + parts.compactMap { $0 }.joined(separator: ": "))
            }
        }
        if !causes.isEmpty { text += (text.isEmpty ? "" : "; ") + causes.joined(separator: "; ") }
        return String((text.isEmpty ? "no reason given" : text).prefix(2_000))
    }

    /// Whitespace and line breaks at the ends dropped (real ComfyUI's messages end in "\n").
    static func trimmed(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    static func describeMessages(_ status: [String: Any]?) -> String {
        let messages = (status?["messages"] as? [[Any]]) ?? []
        for message in messages where (message.first as? String) == "execution_error" {
            let data = message.count > 1 ? message[1] as? [String: Any] : nil
            return "\(data?["exception_type"] as? String ?? "error"): \(trimmed(data?["exception_message"] as? String ?? "no message"))"
        }
        return messages.compactMap { $0.first as? String }.last ?? "status \(status?["status_str"] as? String ?? "unknown")"
    }
}
