import CurlClient
import Logging

/// One HTTP client per independent stream of calls: a client runs one transfer at a time,
/// and a model download must never hold up an upload or a ComfyUI call.
struct WorkerClients: Sendable {
    let downloads: HTTPClient
    let server: HTTPClient
    let comfy: HTTPClient
    let metadata: HTTPClient

    init(logger: Logger) throws {
        downloads = try HTTPClient(logger: logger, name: "spotq-downloads")
        server = try HTTPClient(logger: logger, name: "spotq-server-api")
        comfy = try HTTPClient(logger: logger, name: "spotq-comfy")
        metadata = try HTTPClient(logger: logger, name: "spotq-metadata")
    }

    func shutdown() {
        for client in [downloads, server, comfy, metadata] { client.shutdown() }
    }
}
