import DedicatedThread
import Foundation
import CCurl

/// Where a response body goes. Lives on the client's thread for one transfer.
protocol ResponseSink: AnyObject {
    /// A new response starts (a redirect, a `100 Continue`, or the final one).
    func responseStarted(status: Int)
    /// A chunk of the current response's body. Returns false to abort the transfer, after
    /// recording why in ``failure``.
    func receive(_ chunk: UnsafeRawBufferPointer, status: Int, headers: HTTPHeaders) -> Bool
    /// Why the sink aborted the transfer, if it did.
    var failure: HTTPClientError? { get }
}

/// The state of one libcurl transfer that its C callbacks reach through an opaque pointer.
///
/// Only touched on the client's thread: created there, handed to libcurl for the length of
/// one perform, read back there.
final class Transfer {
    let sink: any ResponseSink
    let requestBody: RequestBody?
    let cancellation: CancellationFlag

    /// The status of the response being received (the last status line seen).
    private(set) var status = 0
    /// The headers of the response being received.
    private(set) var headers = HTTPHeaders()
    /// Why a callback aborted the transfer, if one did (besides the sink and cancellation).
    var failure: HTTPClientError?

    init(sink: any ResponseSink, requestBody: RequestBody?, cancellation: CancellationFlag) {
        self.sink = sink
        self.requestBody = requestBody
        self.cancellation = cancellation
    }

    /// One raw header line, CRLF included.
    func receiveHeaderLine(_ raw: UnsafeRawBufferPointer) {
        // "\r\n" is one Character in Swift, so trim by scalar class rather than by comparing.
        let line = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .newlines)
        if line.hasPrefix("HTTP/") {
            // "HTTP/1.1 200 OK", "HTTP/2 206": a new response begins.
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count >= 2 ? Int(parts[1]) ?? 0 : 0
            headers = HTTPHeaders()
            sink.responseStarted(status: status)
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            headers.add(name: name, value: value)
        }
    }

    func receiveBody(_ chunk: UnsafeRawBufferPointer) -> Bool {
        sink.receive(chunk, status: status, headers: headers)
    }
}

// MARK: - C callbacks. Each receives the `Transfer` as an unretained opaque pointer.

let curlWriteCallback: spotq_curl_data_callback = { data, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    return transfer.receiveBody(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
}

let curlHeaderCallback: spotq_curl_data_callback = { data, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: data, count: length))
    return length
}

let curlReadCallback: spotq_curl_data_callback = { data, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    guard let body = transfer.requestBody else { return 0 }
    if transfer.cancellation.isCancelled { return Int(CURL_READFUNC_ABORT) }
    let buffer = UnsafeMutableRawBufferPointer(start: data, count: size * count)
    switch body.read(into: buffer) {
    case .success(let read):
        return read
    case .failure(let error):
        transfer.failure = error
        return Int(CURL_READFUNC_ABORT)
    }
}

let curlSeekCallback: spotq_curl_seek_callback = { context, offset, origin in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    guard origin == SEEK_SET, let body = transfer.requestBody, body.seek(to: Int64(offset)) else {
        return CURL_SEEKFUNC_CANTSEEK
    }
    return CURL_SEEKFUNC_OK
}

let curlProgressCallback: spotq_curl_progress_callback = { context, _, _, _, _ in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    // Non-zero aborts the transfer with CURLE_ABORTED_BY_CALLBACK.
    return transfer.cancellation.isCancelled ? 1 : 0
}
