/// Metadata keys this module logs under, in one place.
enum LogKeys {
    static let method = "http.method"
    /// Always a redacted URL.
    static let url = "http.url"
    static let status = "http.status"
    static let bytes = "http.bytes"
    static let durationMilliseconds = "http.duration_ms"
    static let resumedFrom = "download.resumed_from"
    static let error = "error"
}
