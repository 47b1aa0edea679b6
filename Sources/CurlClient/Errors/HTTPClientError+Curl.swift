import CCurl
import Foundation

extension HTTPClientError {
    /// The error for a transfer libcurl ended with `outcome.code`. Callers check their own
    /// abort reasons (cancellation, sink failures) first.
    static func fromCurl(_ outcome: TransferOutcome, url: String, redactor: Redactor) -> HTTPClientError {
        let code = outcome.code
        let (kind, message, retryable) = classify(code, url: url)
        return HTTPClientError(
            code: kind, message: message, url: Redaction.redactedURL(url),
            httpStatus: outcome.responseCode > 0 ? outcome.responseCode : nil,
            curlCode: Int(code.rawValue), curlDetail: redactor.scrub(outcome.detail),
            isRetryable: retryable)
    }

    private static func classify(_ code: CURLcode, url: String) -> (Code, String, Bool) {
        let endpoint = hostAndPort(of: url)
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return (.connectionFailed, "could not resolve \(endpoint)", true)
        case CURLE_COULDNT_CONNECT:
            return (.connectionFailed, "could not connect to \(endpoint)", true)
        case CURLE_OPERATION_TIMEDOUT:
            return (.timeout, "timed out talking to \(endpoint)", true)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE,
            CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED,
            CURLE_USE_SSL_FAILED, CURLE_SSL_SHUTDOWN_FAILED:
            return (.tls, "TLS with \(endpoint) failed", false)
        case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING,
            CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return (.partialTransfer, "the connection to \(endpoint) was cut off mid-transfer", true)
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return (.invalidURL, "the URL is malformed or not http/https", false)
        case CURLE_TOO_MANY_REDIRECTS:
            return (.tooManyRedirects, "too many redirects", false)
        case CURLE_FILESIZE_EXCEEDED:
            return (.responseTooLarge, "the response is larger than the configured limit", false)
        case CURLE_WEIRD_SERVER_REPLY, CURLE_BAD_CONTENT_ENCODING:
            return (.invalidResponse, "\(endpoint) sent an invalid HTTP response", true)
        case CURLE_ABORTED_BY_CALLBACK:
            return (.cancelled, "the transfer was aborted", false)
        case CURLE_WRITE_ERROR, CURLE_READ_ERROR:
            return (.io, "a local read or write failed during the transfer", false)
        default:
            return (.other, "the transfer failed", false)
        }
    }

    /// `host:port` of `url` (port defaulted from the scheme), for messages. Never userinfo.
    static func hostAndPort(of url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return "the server" }
        let port = components.port ?? (components.scheme?.lowercased() == "https" ? 443 : 80)
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(shownHost):\(port)"
    }
}
