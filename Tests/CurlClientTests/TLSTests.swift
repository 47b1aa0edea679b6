import CurlClient
import Foundation
import SpotqTestSupport
import Testing

/// TLS against a real `openssl s_server` with a throwaway self-signed certificate for
/// 127.0.0.1: refused by default, accepted when its certificate is the CA bundle, accepted
/// with verification explicitly off.
@Suite("HTTPClient TLS")
struct TLSTests {
    @Test func tlsVerification_isOnByDefault_andHonoursCABundleAndExplicitOptOut() async throws {
        try await withTemporaryDirectory { directory in
            let certificate = directory.appendingPathComponent("cert.pem").path
            let key = directory.appendingPathComponent("key.pem").path
            try await runOpenSSL([
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
            ])
            let port = try unusedLoopbackPort()
            let server = try startOpenSSLServer(port: port, certificate: certificate, key: key)
            defer {
                // SIGKILL: children inherit the test process's signal mask, in which SIGTERM
                // is blocked (seen on Linux), so terminate() would leave the server running.
                kill(server.processIdentifier, SIGKILL)
                server.waitUntilExit()
            }
            let url = "https://127.0.0.1:\(port)/"
            try await waitUntilListening(url: url)

            let verifying = try makeClient()
            let error = await #expect(throws: HTTPClientError.self) {
                _ = try await verifying.send(HTTPRequest(url: url))
            }
            #expect(error?.code == .tls)
            #expect(error?.isRetryable == false)

            let trusting = try makeClient { $0.caBundlePath = certificate }
            #expect(try await trusting.send(HTTPRequest(url: url)).status == 200)

            let insecure = try makeClient { $0.insecureSkipTLSVerify = true }
            #expect(try await insecure.send(HTTPRequest(url: url)).status == 200)
        }
    }

    private func runOpenSSL(_ arguments: [String]) async throws {
        let (status, output) = try await Shell.capture("/usr/bin/openssl", arguments)
        guard status == 0 else { throw TestFailure("openssl \(arguments.first ?? "") failed with \(status): \(output.suffix(500))") }
    }

    private func startOpenSSLServer(port: Int, certificate: String, key: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificate, "-key", key, "-www", "-quiet",
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Polls until the server accepts TLS connections (an insecure request succeeds), up to
    /// 30 s: openssl starts slowly when every core is busy with other tests.
    private func waitUntilListening(url: String) async throws {
        let probe = try makeClient {
            $0.insecureSkipTLSVerify = true
            $0.connectTimeout = .milliseconds(500)
        }
        try await eventually("the TLS server accepting connections", timeout: .seconds(30)) {
            do {
                _ = try await probe.send(HTTPRequest(url: url, timeout: .seconds(1)))
                return true
            } catch let error as HTTPClientError where error.code == .connectionFailed || error.code == .timeout {
                return false
            }
        }
    }
}
