import CurlClient
import Foundation
import SpotqCore

/// The spotq server's pod routes, with the batch's bearer token.
struct ServerAPI: Sendable {
    let configuration: WorkerConfiguration
    let http: HTTPClient

    /// The server refused this pod's token (a configuration error; retrying cannot help).
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    var headers: HTTPHeaders { ["Authorization": "Bearer \(configuration.uploadToken)"] }
    func url(_ tail: String) -> String { "\(configuration.serverURL)/v1/batches/\(configuration.batchID)/\(tail)" }

    /// Fetches the manifest, retrying while the server is unreachable.
    func manifest(until notice: TerminationNotice) async throws -> BatchManifest {
        var failures = 0
        while true {
            do {
                let answer = try await http.send(HTTPRequest(url: url("manifest"), headers: headers, timeout: .seconds(30)))
                if answer.status == 401 || answer.status == 403 { throw Refused(description: "manifest: HTTP \(answer.status) \(String(decoding: answer.body.prefix(300), as: UTF8.self))") }
                if answer.status == 200 { return try JSONDecoder().decode(BatchManifest.self, from: Data(answer.body)) }
            } catch let refused as Refused {
                throw refused
            } catch is DecodingError {
                throw Refused(description: "the manifest is not one this worker reads")
            } catch {}
            failures += 1
            if notice.isSet { throw CancellationError() }
            try await Task.sleep(for: configuration.uploadBackoff.delay(afterFailures: failures))
        }
    }

    enum UploadOutcome: Sendable {
        case stored
        /// The server will never take this bundle (a 4xx other than 408/429).
        case refused(String)
    }

    /// Uploads one bundle; retries with backoff and jitter until a 2xx, a permanent refusal,
    /// or the termination deadline.
    func upload(_ bundle: Data, notice: TerminationNotice) async throws -> UploadOutcome {
        var failures = 0
        while true {
            var timeout = configuration.uploadAttemptTimeout
            if let left = notice.remaining() {
                guard left > .zero else { throw CancellationError() }
                timeout = min(timeout, left)
            }
            // A busy server (429, 503) says when to come back; the wait is at least that.
            var serverAsked: Duration?
            do {
                var headers = self.headers
                headers.add(name: "Content-Type", value: "application/zip")
                let answer = try await http.send(HTTPRequest(method: .post, url: url("results"), headers: headers, body: [UInt8](bundle), timeout: timeout))
                switch answer.status {
                case 200, 201: return .stored
                case 408, 429, 500...599: serverAsked = RetryAfter.delay(answer.headers["Retry-After"])
                default: return .refused("the server answered \(answer.status): \(String(decoding: answer.body.prefix(500), as: UTF8.self))")
                }
            } catch {}
            failures += 1
            let delay = max(configuration.uploadBackoff.delay(afterFailures: failures), serverAsked ?? .zero)
            if let left = notice.remaining(), left < delay { throw CancellationError() }
            try await Task.sleep(for: delay)
        }
    }

    /// Items of the batch not yet done or failed; nil when the server cannot say.
    func remaining() async -> Int? {
        guard let answer = try? await http.send(HTTPRequest(url: url("progress"), headers: headers, timeout: .seconds(15))), answer.status == 200,
              let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
        else { return nil }
        return object["remaining"] as? Int
    }
}
