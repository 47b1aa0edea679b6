import CCurl

/// libcurl's process-wide setup, done exactly once before the first handle.
///
/// `curl_global_init` is not thread-safe in libcurl 7.88; a Swift `static let` is initialised
/// lazily under `swift_once`, so every caller sees the single result and none races another.
enum CurlGlobal {
    private static let initResult: CURLcode = spotq_curl_global_init_default()

    /// Runs `curl_global_init` on the first call; throws if it failed (it then fails for good).
    static func ensureInitialised() throws(HTTPClientError) {
        let code = initResult
        guard code == CURLE_OK else {
            throw HTTPClientError(
                code: .other, message: "libcurl global initialisation failed",
                curlCode: Int(code.rawValue), curlDetail: CurlGlobal.describe(code))
        }
    }

    /// `curl_easy_strerror` text for `code`.
    static func describe(_ code: CURLcode) -> String {
        String(cString: curl_easy_strerror(code))
    }
}
