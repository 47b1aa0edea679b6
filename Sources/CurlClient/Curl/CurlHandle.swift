import DedicatedThread
import CCurl

/// What one transfer asks of libcurl, beyond the client-wide ``CurlConfiguration``.
struct TransferOptions: Sendable {
    var method: HTTPMethod = .get
    var url: String
    var headers: HTTPHeaders = [:]
    /// Size of the request body, which libcurl reads through the transfer's ``RequestBody``.
    var bodySize: Int64?
    /// Total time allowed; nil for none (then stall detection should be on).
    var totalTimeout: Duration?
    /// Abort when slower than the configured stall speed for the stall timeout.
    var detectStalls = false
    /// Refuse bodies larger than this (libcurl checks `Content-Length` up front).
    var maxResponseBytes: Int?
    /// `Range: bytes=<offset>-` when set.
    var rangeStart: Int64?
    var maxReceiveBytesPerSecond: Int?
}

/// How a transfer ended, as libcurl reported it.
struct TransferOutcome {
    var code: CURLcode
    var responseCode: Int
    var effectiveURL: String
    /// `curl_easy_strerror` text, plus the error buffer when it says more.
    var detail: String

    var succeeded: Bool { code == CURLE_OK }
}

/// One libcurl easy handle driven through its own multi handle, reused for every transfer
/// of one ``HTTPClient`` so connections are kept alive between requests.
///
/// The multi interface (rather than `curl_easy_perform`) lets a cancelled task wake the
/// transfer loop at once with `curl_multi_wakeup` instead of waiting up to a second for the
/// next progress callback.
final class CurlHandle: @unchecked Sendable {
    // `@unchecked Sendable`: `easy`, `multi` and `errorBuffer` are used only by jobs on the
    // owning client's DedicatedThread, which runs one at a time. The one exception is
    // `wakeup()`, which calls `curl_multi_wakeup`, documented as safe from any thread.
    private let easy: UnsafeMutableRawPointer
    private let multi: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init() throws(HTTPClientError) {
        try CurlGlobal.ensureInitialised()
        guard let easy = curl_easy_init() else {
            throw HTTPClientError(code: .other, message: "curl_easy_init failed")
        }
        guard let multi = curl_multi_init() else {
            curl_easy_cleanup(easy)
            throw HTTPClientError(code: .other, message: "curl_multi_init failed")
        }
        self.easy = easy
        self.multi = multi
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_multi_cleanup(multi)
        curl_easy_cleanup(easy)
        errorBuffer.deallocate()
    }

    /// Makes a running ``perform(_:configuration:transfer:)`` look at its cancellation flag now.
    func wakeup() {
        curl_multi_wakeup(multi)
    }

    /// Runs one transfer to its end. Blocks: call only on the owning thread.
    func perform(_ options: TransferOptions, configuration: CurlConfiguration, transfer: Transfer) -> TransferOutcome {
        curl_easy_reset(easy)
        errorBuffer[0] = 0
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }

        var setter = OptionSetter(easy: easy)
        setter.apply(options, configuration: configuration, errorBuffer: errorBuffer)
        headerList = setter.headerList(options)
        setter.set(CURLOPT_HTTPHEADER, headerList)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        setter.callbacks(context: context, hasBody: options.bodySize != nil)
        if let failed = setter.firstFailure {
            return outcome(code: failed)
        }

        let code = drive(transfer.cancellation)
        return outcome(code: code)
    }

    /// The multi loop: perform, then sleep in `curl_multi_poll` until there is socket work,
    /// a timer fires, or ``wakeup()`` is called.
    private func drive(_ cancellation: CancellationFlag) -> CURLcode {
        guard curl_multi_add_handle(multi, easy) == CURLM_OK else { return CURLE_FAILED_INIT }
        defer { curl_multi_remove_handle(multi, easy) }
        while true {
            var running: Int32 = 0
            guard curl_multi_perform(multi, &running) == CURLM_OK else { return CURLE_FAILED_INIT }
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                if message.pointee.msg == CURLMSG_DONE {
                    return message.pointee.data.result
                }
            }
            if running == 0 { return CURLE_OK }
            if cancellation.isCancelled { return CURLE_ABORTED_BY_CALLBACK }
            guard curl_multi_poll(multi, nil, 0, 1000, nil) == CURLM_OK else { return CURLE_FAILED_INIT }
        }
    }

    private func outcome(code: CURLcode) -> TransferOutcome {
        var status = 0
        _ = spotq_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        var urlPointer: UnsafePointer<CChar>?
        _ = spotq_curl_getinfo_string(easy, CURLINFO_EFFECTIVE_URL, &urlPointer)
        var detail = CurlGlobal.describe(code)
        let buffered = String(cString: errorBuffer)
        if !buffered.isEmpty && buffered != detail {
            detail += " (\(buffered.trimmingCharacters(in: .whitespacesAndNewlines)))"
        }
        return TransferOutcome(
            code: code, responseCode: status,
            effectiveURL: urlPointer.map { String(cString: $0) } ?? "",
            detail: detail)
    }
}

/// Sets options on an easy handle, remembering the first one libcurl refused.
private struct OptionSetter {
    let easy: UnsafeMutableRawPointer
    var firstFailure: CURLcode?

    init(easy: UnsafeMutableRawPointer) {
        self.easy = easy
    }

    mutating func set(_ option: CURLoption, _ value: Int) {
        record(spotq_curl_setopt_long(easy, option, value))
    }

    mutating func set(_ option: CURLoption, offset value: Int64) {
        record(spotq_curl_setopt_off(easy, option, curl_off_t(value)))
    }

    mutating func set(_ option: CURLoption, _ value: String) {
        // libcurl copies string options (all but POSTFIELDS, which we never use).
        record(value.withCString { spotq_curl_setopt_string(easy, option, $0) })
    }

    mutating func set(_ option: CURLoption, _ list: UnsafeMutablePointer<curl_slist>?) {
        record(spotq_curl_setopt_slist(easy, option, list))
    }

    private mutating func record(_ code: CURLcode) {
        if code != CURLE_OK && firstFailure == nil { firstFailure = code }
    }

    mutating func apply(_ options: TransferOptions, configuration: CurlConfiguration, errorBuffer: UnsafeMutablePointer<CChar>) {
        record(spotq_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer))
        set(CURLOPT_URL, options.url)
        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_PROTOCOLS_STR, "http,https")
        set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        set(CURLOPT_USERAGENT, configuration.userAgent)
        set(CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeout.curlMilliseconds)
        set(CURLOPT_TCP_KEEPALIVE, 1)
        set(CURLOPT_FOLLOWLOCATION, configuration.followRedirects ? 1 : 0)
        set(CURLOPT_MAXREDIRS, configuration.maxRedirects)
        set(CURLOPT_SSL_VERIFYPEER, configuration.insecureSkipTLSVerify ? 0 : 1)
        set(CURLOPT_SSL_VERIFYHOST, configuration.insecureSkipTLSVerify ? 0 : 2)
        if let caBundlePath = configuration.caBundlePath {
            set(CURLOPT_CAINFO, caBundlePath)
        }
        if let timeout = options.totalTimeout {
            set(CURLOPT_TIMEOUT_MS, timeout.curlMilliseconds)
        }
        if options.detectStalls {
            var minimum = configuration.stallMinimumBytesPerSecond
            if let cap = options.maxReceiveBytesPerSecond {
                // A speed cap under the stall speed would make every capped download "stall".
                minimum = max(1, min(minimum, cap / 2))
            }
            set(CURLOPT_LOW_SPEED_LIMIT, minimum)
            set(CURLOPT_LOW_SPEED_TIME, configuration.stallTimeout.curlSeconds)
        }
        if let maxResponseBytes = options.maxResponseBytes {
            set(CURLOPT_MAXFILESIZE_LARGE, offset: Int64(maxResponseBytes))
        }
        if let rangeStart = options.rangeStart {
            set(CURLOPT_RANGE, "\(rangeStart)-")
        }
        if let speed = options.maxReceiveBytesPerSecond {
            set(CURLOPT_MAX_RECV_SPEED_LARGE, offset: Int64(speed))
        }
        applyMethod(options.method, bodySize: options.bodySize)
    }

    private mutating func applyMethod(_ method: HTTPMethod, bodySize: Int64?) {
        switch (method, bodySize) {
        case (.get, nil):
            set(CURLOPT_HTTPGET, 1)
        case (.head, nil):
            set(CURLOPT_NOBODY, 1)
        case (.post, let size):
            // POST with no POSTFIELDS reads the body through the read callback.
            set(CURLOPT_POST, 1)
            set(CURLOPT_POSTFIELDSIZE_LARGE, offset: size ?? 0)
        case (_, let size?):
            set(CURLOPT_UPLOAD, 1)
            set(CURLOPT_INFILESIZE_LARGE, offset: size)
            if method != .put { set(CURLOPT_CUSTOMREQUEST, method.rawValue) }
        case (_, nil):
            set(CURLOPT_CUSTOMREQUEST, method.rawValue)
        }
    }

    func headerList(_ options: TransferOptions) -> UnsafeMutablePointer<curl_slist>? {
        var list: UnsafeMutablePointer<curl_slist>?
        for field in options.headers {
            // Header names or values with line breaks would inject headers: drop them.
            guard !field.name.contains(where: \.isNewline), !field.value.contains(where: \.isNewline) else { continue }
            // "Name;" is libcurl's spelling of a header with an empty value.
            let line = field.value.isEmpty ? "\(field.name);" : "\(field.name): \(field.value)"
            list = curl_slist_append(list, line)
        }
        if options.bodySize != nil && !options.headers.contains("Expect") {
            // No `Expect: 100-continue` round trip (and its 1 s wait on servers that ignore it).
            list = curl_slist_append(list, "Expect:")
        }
        return list
    }

    mutating func callbacks(context: UnsafeMutableRawPointer, hasBody: Bool) {
        record(spotq_curl_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback))
        record(spotq_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, context))
        record(spotq_curl_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback))
        record(spotq_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, context))
        // Always ours, so libcurl never falls back to reading stdin.
        record(spotq_curl_setopt_data_callback(easy, CURLOPT_READFUNCTION, curlReadCallback))
        record(spotq_curl_setopt_pointer(easy, CURLOPT_READDATA, context))
        if hasBody {
            record(spotq_curl_setopt_seek_callback(easy, curlSeekCallback))
            record(spotq_curl_setopt_pointer(easy, CURLOPT_SEEKDATA, context))
        }
        record(spotq_curl_setopt_progress_callback(easy, curlProgressCallback))
        record(spotq_curl_setopt_pointer(easy, CURLOPT_XFERINFODATA, context))
        set(CURLOPT_NOPROGRESS, 0)
    }
}
