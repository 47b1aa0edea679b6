@testable import CurlClient
import Testing

@Suite("CurlClient value types")
struct ValueTypeTests {
    @Test func headers_lookUpCaseInsensitivelyAndKeepEveryValue() {
        var headers: HTTPHeaders = ["Set-Cookie": "a=1"]
        headers.add(name: "set-cookie", value: "b=2")
        headers.add(name: "Content-Type", value: "text/plain")
        #expect(headers["SET-COOKIE"] == "a=1")
        #expect(headers.values(for: "Set-Cookie") == ["a=1", "b=2"])
        headers["content-type"] = "application/json"
        #expect(headers.values(for: "Content-Type") == ["application/json"])
        headers["set-cookie"] = nil
        #expect(!headers.contains("Set-Cookie"))
        #expect(headers.count == 1)
    }

    @Test func redactedURL_hidesPasswordAndEveryQueryValue() {
        let url = "https://user:s3cret-pass@civitai.com/api/download/models/1?token=tok123456&type=Model#frag"
        let redacted = Redaction.redactedURL(url)
        #expect(redacted == "https://user:REDACTED@civitai.com/api/download/models/1?token=REDACTED&type=REDACTED")
        #expect(Redaction.redactedURL("not a url?token=abc") == "not a url?REDACTED")
    }

    @Test func redactor_scrubsHeaderCredentialsAndQueryValuesFromText() {
        var headers = HTTPHeaders()
        headers["Authorization"] = "Bearer abcdef123456"
        headers["X-Request-Id"] = "visible-request-id"
        let redactor = Redactor(url: "https://h/x?Authorization=b2-download-token", headers: headers)
        let scrubbed = redactor.scrub("saw abcdef123456 and b2-download-token for visible-request-id")
        #expect(scrubbed == "saw REDACTED and REDACTED for visible-request-id")
    }

    @Test func contentRange_parsesRangesAndUnsatisfiedForm() {
        #expect(ContentRange("bytes 100-199/1000") == ContentRange(first: 100, last: 199, total: 1000))
        #expect(ContentRange("bytes */1000") == ContentRange(first: nil, last: nil, total: 1000))
        #expect(ContentRange("bytes 0-9/*") == ContentRange(first: 0, last: 9, total: nil))
        #expect(ContentRange("bytes 9-0/10") == nil)
        #expect(ContentRange("items 0-1/2") == nil)
    }

    @Test func configuration_validate_rejectsUnusableValues() {
        #expect(throws: HTTPClientError.self) { try CurlConfiguration(connectTimeout: .zero).validate() }
        #expect(throws: HTTPClientError.self) { try CurlConfiguration(userAgent: "a\nb").validate() }
        #expect(throws: HTTPClientError.self) { try CurlConfiguration(maxResponseBytes: 0).validate() }
        #expect(throws: Never.self) { try CurlConfiguration().validate() }
    }

    @Test func configuration_defaults_verifyTLSAndFollowRedirects() {
        let configuration = CurlConfiguration()
        #expect(!configuration.insecureSkipTLSVerify)
        #expect(configuration.followRedirects)
        #expect(configuration.maxResponseBytes == 64 * 1024 * 1024)
    }

    @Test func retryableStatuses_areTransientOnes() {
        #expect([408, 425, 429, 500, 502, 503, 504].allSatisfy(HTTPClientError.isRetryableStatus))
        #expect(![400, 401, 403, 404, 410, 501, 505].contains(where: HTTPClientError.isRetryableStatus))
    }
}
