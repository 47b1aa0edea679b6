import CurlClient
import Foundation
import SpotqTestSupport
import Testing

@Suite("HTTPClient requests")
struct RequestTests {
    struct Greeting: Codable, Equatable {
        var name: String
        var count: Int
    }

    @Test func sendJSON_roundTripsBodyAndHeaders() async throws {
        try await TestServer.run { server in
            let client = try makeClient()
            var headers = HTTPHeaders()
            headers.add(name: "X-Trace", value: "abc")
            headers.add(name: "X-Multi", value: "one")
            headers.add(name: "X-Multi", value: "two")
            let request = try HTTPRequest.json(
                .post, server.url("/echo"), body: Greeting(name: "pod", count: 3), headers: headers)
            let echo = try await client.sendJSON(request, decoding: EchoReply.self)

            #expect(echo.method == "POST")
            #expect(echo.values(of: "content-type") == ["application/json"])
            #expect(echo.values(of: "x-trace") == ["abc"])
            #expect(echo.values(of: "x-multi").joined(separator: ",").replacingOccurrences(of: " ", with: "") == "one,two")
            #expect(echo.values(of: "user-agent") == ["spotq/1 (libcurl)"])
            #expect(echo.values(of: "expect").isEmpty)
            let sent = try JSONDecoder().decode(Greeting.self, from: Data(echo.body.utf8))
            #expect(sent == Greeting(name: "pod", count: 3))
        }
    }

    @Test func send_exposesStatusHeadersCaseInsensitivelyAndEffectiveURL() async throws {
        try await TestServer.run { server in
            let client = try makeClient()
            let response = try await client.send(HTTPRequest(url: server.url("/files/100")))
            #expect(response.status == 200)
            #expect(response.headers["CONTENT-LENGTH"] == "100")
            #expect(response.headers["accept-ranges"] == "bytes")
            #expect(response.body == TestContent.bytes(0..<100))
            #expect(response.effectiveURL == server.url("/files/100"))
        }
    }

    @Test func send_withPutDeleteAndPatch_sendsThoseMethods() async throws {
        try await TestServer.run { server in
            let client = try makeClient()
            for method in [HTTPMethod.put, .patch, .delete] {
                let body: [UInt8]? = method == .delete ? nil : Array("x".utf8)
                let response = try await client.send(HTTPRequest(method: method, url: server.url("/echo"), body: body))
                let echo = try response.requireSuccess().decode(EchoReply.self)
                #expect(echo.method == method.rawValue)
                #expect(echo.body == (body == nil ? "" : "x"))
            }
        }
    }

    @Test func send_withNon2xx_returnsResponseAndRequireSuccessThrowsTypedError() async throws {
        try await TestServer.run { server in
            let client = try makeClient()
            let response = try await client.send(HTTPRequest(url: server.url("/status/503")))
            #expect(response.status == 503)
            let error = try #require(throws: HTTPClientError.self) { try response.requireSuccess() }
            #expect(error.code == .httpStatus)
            #expect(error.httpStatus == 503)
            #expect(error.isRetryable)

            let notFound = try await client.send(HTTPRequest(url: server.url("/status/404")))
            let notFoundError = try #require(throws: HTTPClientError.self) { try notFound.requireSuccess() }
            #expect(!notFoundError.isRetryable)
        }
    }

    @Test func sendJSON_withErrorStatus_throwsWithoutLeakingTokenEchoedByServer() async throws {
        try await TestServer.run { server in
            let client = try makeClient()
            var headers = HTTPHeaders()
            headers["Authorization"] = "Bearer header-secret-42"
            let url = server.url("/status/403?token=query-secret-99&type=Model")
            let error = await #expect(throws: HTTPClientError.self) {
                _ = try await client.sendJSON(HTTPRequest(url: url, headers: headers), decoding: EchoReply.self)
            }
            let description = try #require(error).description
            #expect(description.contains("403"))
            #expect(description.contains("no luck for"))
            #expect(!description.contains("query-secret-99"))
            #expect(!description.contains("header-secret-42"))
            #expect(description.contains("type=REDACTED"))
        }
    }

    @Test func send_whenServerIsSlowerThanTimeout_throwsRetryableTimeout() async throws {
        try await TestServer.run { server in
            // The server answers after 60 s: a timeout error (not the answer) proves the 300 ms
            // limit ended the request, with no clock to read on a loaded machine. The server's
            // handler is cancelled when the test server stops.
            let client = try makeClient()
            let error = await #expect(throws: HTTPClientError.self) {
                _ = try await client.send(HTTPRequest(url: server.url("/slow?delayMs=60000"), timeout: .milliseconds(300)))
            }
            #expect(error?.code == .timeout)
            #expect(error?.isRetryable == true)
        }
    }

    @Test func send_whenConnectionRefused_throwsConnectionFailedNamingHostAndPort() async throws {
        let port = try unusedLoopbackPort()
        let client = try makeClient()
        var headers = HTTPHeaders()
        headers["Authorization"] = "Bearer never-show-me"
        let url = "http://admin:hunter2-password@127.0.0.1:\(port)/x?token=secret-token-value"
        let error = await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPRequest(url: url, headers: headers))
        }
        let failure = try #require(error)
        #expect(failure.code == .connectionFailed)
        #expect(failure.isRetryable)
        #expect(failure.curlCode == 7)
        #expect(failure.description.contains("127.0.0.1:\(port)"))
        for secret in ["hunter2-password", "secret-token-value", "never-show-me"] {
            #expect(!failure.description.contains(secret))
        }
    }

    @Test func send_whenBodyExceedsLimit_throwsResponseTooLarge() async throws {
        try await TestServer.run { server in
            let client = try makeClient { $0.maxResponseBytes = 4096 }
            for path in ["/files/10000", "/chunked/10000"] {
                let error = await #expect(throws: HTTPClientError.self) {
                    _ = try await client.send(HTTPRequest(url: server.url(path)))
                }
                #expect(error?.code == .responseTooLarge, "\(path)")
            }
            // The handle is still good afterwards.
            #expect(try await client.send(HTTPRequest(url: server.url("/files/4096"))).body.count == 4096)
        }
    }

    @Test func send_followingRedirectToAnotherPort_dropsAuthorization() async throws {
        try await TestServer.run { origin in
            try await TestServer.run { other in
                let client = try makeClient()
                var headers = HTTPHeaders()
                headers["Authorization"] = "Bearer only-for-origin"
                let target = other.url("/echo").addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let response = try await client.send(
                    HTTPRequest(url: origin.url("/redirect?to=\(target)"), headers: headers))
                let echo = try response.requireSuccess().decode(EchoReply.self)
                #expect(echo.values(of: "authorization").isEmpty)
                #expect(response.effectiveURL == other.url("/echo"))
                #expect(await origin.log.entries(forPath: "/redirect").first?.authorization == "Bearer only-for-origin")
            }
        }
    }

    @Test func send_whenURLIsNotHTTP_throwsInvalidURL() async throws {
        let client = try makeClient()
        let error = await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPRequest(url: "file:///etc/passwd"))
        }
        #expect(error?.code == .invalidURL)
    }

    @Test func send_afterShutdown_throwsClientStopped() async throws {
        let client = try makeClient()
        client.shutdown()
        let error = await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPRequest(url: "http://127.0.0.1:9/"))
        }
        #expect(error?.code == .clientStopped)
    }

    @Test func send_whenTaskIsCancelled_throwsCancellationErrorPromptly() async throws {
        try await TestServer.run { server in
            let client = try makeClient()
            let task = Task {
                try await client.send(HTTPRequest(url: server.url("/slow?delayMs=60000")))
            }
            // Wait until the server has the request, then cancel.
            try await eventually("the server has the request", timeout: .seconds(5)) { await !server.log.entries(forPath: "/slow").isEmpty }
            let cancelledAt = ContinuousClock.now
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            // Far sooner than the 60 s answer: the cancellation ended it (loose, for a busy CI).
            #expect(ContinuousClock.now - cancelledAt < .seconds(20))
        }
    }
}
