/// Keeps the final response's body in memory, up to a limit.
final class MemorySink: ResponseSink {
    private let limit: Int
    private(set) var body: [UInt8] = []
    private(set) var failure: HTTPClientError?

    init(limit: Int) {
        self.limit = limit
    }

    func responseStarted(status: Int) {
        // A redirect's or `100 Continue`'s body is not the answer.
        body.removeAll(keepingCapacity: true)
    }

    func receive(_ chunk: UnsafeRawBufferPointer, status: Int, headers: HTTPHeaders) -> Bool {
        guard body.count + chunk.count <= limit else {
            // A chunked body gives libcurl no Content-Length to check up front.
            failure = HTTPClientError(
                code: .responseTooLarge,
                message: "the response body is larger than the \(limit)-byte limit")
            return false
        }
        body.append(contentsOf: chunk)
        return true
    }
}
