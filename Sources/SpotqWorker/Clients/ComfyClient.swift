import CurlClient
import Foundation
import Logging

/// ComfyUI over its HTTP API: submit a prompt, wait for its history, fetch its images, list
/// its models. Failures are ``ComfyFailure``s.
struct ComfyClient: Sendable {
    let baseURL: String
    let http: HTTPClient

    /// Longest `/history` and `/queue` may go unanswered while a prompt is awaited; then
    /// ComfyUI counts as unreachable (a dead ComfyUI fails the attempt within this, not at
    /// the generation timeout).
    var unreachableLimit: Duration = .seconds(30)

    struct Image: Sendable {
        var filename: String
        /// Where under ComfyUI's output folder it is ("" for the folder itself).
        var subfolder: String
        var data: Data
    }

    /// Waits until `GET /system_stats` answers (ComfyUI starts slowly).
    func waitUntilUp(limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while true {
            if let answer = try? await http.send(HTTPRequest(url: baseURL + "/system_stats", timeout: .seconds(5))), answer.status == 200 { return }
            guard ContinuousClock.now < deadline else { throw ComfyFailure.unreachable(what: "GET /system_stats", error: "no answer from \(baseURL) within \(limit)") }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Submits `workflow` (API format, as JSON text) and returns ComfyUI's prompt id. Throws
    /// ``ComfyFailure``.
    func submit(workflowJSON: String, promptID: String) async throws -> String {
        let body = #"{"prompt": \#(workflowJSON), "client_id": "spotq-worker", "prompt_id": "\#(promptID)"}"#
        let answer: HTTPResponse
        do {
            answer = try await http.send(HTTPRequest(method: .post, url: baseURL + "/prompt", headers: ["Content-Type": "application/json"], body: Array(body.utf8), timeout: .seconds(60)))
        } catch {
            try Task.checkCancellation()
            throw ComfyFailure.unreachable(what: "POST /prompt", error: "\(error)")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
        switch answer.status {
        case 400: throw ComfyFailure.refused(ComfyRefusal(answer: object))
        case 500...599: throw ComfyFailure.serverError(what: "POST /prompt", status: answer.status)
        case 200: break
        default: throw ComfyFailure.unexpectedAnswer(what: "POST /prompt", status: answer.status)
        }
        guard let id = object?["prompt_id"] as? String else { throw ComfyFailure.unexpectedAnswer(what: "POST /prompt (no prompt_id)", status: answer.status) }
        if let nodeErrors = object?["node_errors"] as? [String: Any], !nodeErrors.isEmpty {
            // Real ComfyUI runs the valid outputs of a partly valid prompt: stop it, or the
            // next item queues behind work nobody will collect.
            await abandon(promptID: id)
            throw ComfyFailure.refused(ComfyRefusal(answer: object, partly: true))
        }
        return id
    }

    /// Polls `/history/{id}` until the prompt finished; returns its images. A prompt that is
    /// in neither the history nor the queue was lost (ComfyUI restarted, or its queue was
    /// cleared): that fails at once instead of waiting out `limit`; so does a ComfyUI that
    /// answers neither for ``unreachableLimit``. Throws ``ComfyFailure``.
    func waitForImages(promptID: String, limit: Duration) async throws -> [Image] {
        let deadline = ContinuousClock.now + limit
        var silentSince: ContinuousClock.Instant? = nil
        while true {
            guard ContinuousClock.now < deadline else {
                await abandon(promptID: promptID)
                throw ComfyFailure.timedOut(promptID: promptID, limit: limit)
            }
            let read = await history(promptID)
            try Task.checkCancellation()
            guard case .entry(let entry) = read else {
                // Real ComfyUI queues a prompt before it answers /prompt and writes its history
                // before it leaves the queue. The prompt may finish between the two reads, so
                // the history is read once more after the queue: missing from the queue and
                // then from the history, it is lost.
                switch await queueHolds(promptID) {
                case false?:
                    if case .entry = await history(promptID) { continue }
                    throw ComfyFailure.lost(promptID: promptID)
                case true?:
                    silentSince = nil
                case nil:
                    let since = silentSince ?? .now
                    silentSince = since
                    if ContinuousClock.now - since >= unreachableLimit {
                        throw ComfyFailure.unreachable(what: "GET /history and /queue, for \(unreachableLimit)", error: "no answer while prompt \(promptID) was awaited")
                    }
                }
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            return try await images(of: entry, promptID: promptID)
        }
    }

    /// The images a finished prompt's history entry names, fetched with `GET /view`.
    func images(of entry: [String: Any], promptID: String) async throws -> [Image] {
        let status = entry["status"] as? [String: Any]
        guard status?["status_str"] as? String == "success" else { throw Self.executionFailure(status) }
        var images: [Image] = []
        for case let (_, output as [String: Any]) in (entry["outputs"] as? [String: Any]) ?? [:] {
            for image in (output["images"] as? [[String: Any]]) ?? [] where (image["type"] as? String) == "output" {
                guard let filename = image["filename"] as? String else { continue }
                let subfolder = image["subfolder"] as? String ?? ""
                let query = "filename=\(Self.encode(filename))&subfolder=\(Self.encode(subfolder))&type=output"
                let view: HTTPResponse
                do {
                    view = try await http.send(HTTPRequest(url: baseURL + "/view?" + query, timeout: .seconds(60)))
                } catch {
                    try Task.checkCancellation()
                    throw ComfyFailure.unreachable(what: "GET /view", error: "\(error)")
                }
                guard view.status == 200 else { throw ComfyFailure.outputUnavailable(filename: filename, status: view.status) }
                images.append(Image(filename: filename, subfolder: subfolder, data: Data(view.body)))
            }
        }
        guard !images.isEmpty else { throw ComfyFailure.noImage(promptID: promptID) }
        return images
    }

    /// What a prompt's history says.
    enum HistoryRead {
        case entry([String: Any])
        /// `{}`: queued, running, or unknown.
        case none
        /// No answer.
        case unreachable
    }

    /// The prompt's `/history` entry.
    func history(_ promptID: String) async -> HistoryRead {
        guard let answer = try? await http.send(HTTPRequest(url: baseURL + "/history/\(promptID)", timeout: .seconds(30))), answer.status == 200 else { return .unreachable }
        guard let entry = ((try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any])?[promptID] as? [String: Any] else { return .none }
        return .entry(entry)
    }

    /// Whether `GET /queue` lists `promptID` running or pending; nil when it does not answer.
    func queueHolds(_ promptID: String) async -> Bool? {
        guard let answer = try? await http.send(HTTPRequest(url: baseURL + "/queue", timeout: .seconds(10))), answer.status == 200,
              let queue = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
        else { return nil }
        let rows = ((queue["queue_running"] as? [[Any]]) ?? []) + ((queue["queue_pending"] as? [[Any]]) ?? [])
        return rows.contains { $0.count > 1 && ($0[1] as? String) == promptID }
    }

    /// What ComfyUI lists in one model folder (`GET /models/checkpoints`, `/models/loras`).
    enum ModelListing: Sendable, Equatable {
        case listed(Set<String>)
        /// It answered, but not with a list (an older ComfyUI without the route).
        case notOffered
        case unreachable
    }

    func models(in folder: String) async -> ModelListing {
        guard let answer = try? await http.send(HTTPRequest(url: baseURL + "/models/\(folder)", timeout: .seconds(10))) else { return .unreachable }
        guard answer.status == 200, let names = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String] else { return .notOffered }
        return .listed(Set(names))
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

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    /// ComfyUI's refusal as one line (``ComfyRefusal/reason``).
    static func describeError(_ object: [String: Any]?) -> String {
        ComfyRefusal(answer: object).reason
    }

    /// The failure a history entry whose status is not `success` stands for.
    static func executionFailure(_ status: [String: Any]?) -> ComfyFailure {
        let messages = (status?["messages"] as? [[Any]]) ?? []
        for message in messages {
            let data = message.count > 1 ? message[1] as? [String: Any] : nil
            switch message.first as? String {
            case "execution_error":
                return .executionError(.init(
                    nodeID: (data?["node_id"] as? String) ?? (data?["node_id"] as? NSNumber)?.stringValue, nodeType: data?["node_type"] as? String,
                    exceptionType: data?["exception_type"] as? String ?? "error",
                    message: ComfyRefusal.trimmed(data?["exception_message"] as? String ?? "no message")))
            case "execution_interrupted":
                return .interruptedInComfy(nodeType: data?["node_type"] as? String)
            default:
                continue
            }
        }
        let last = messages.compactMap { $0.first as? String }.last ?? "status \(status?["status_str"] as? String ?? "unknown")"
        return .executionError(.init(nodeID: nil, nodeType: nil, exceptionType: "error", message: last))
    }

    /// An execution error as one line (`type: message`), as real ComfyUI words it.
    static func describeMessages(_ status: [String: Any]?) -> String {
        guard case .executionError(let error) = executionFailure(status) else { return executionFailure(status).description }
        return "\(error.exceptionType): \(error.message)"
    }
}
