import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SpotqCore
import SpotqHTTP
import SpotqStore
import Testing
@testable import ServerTestSupport

@Suite("HTTP router: authentication, in process")
struct RouterAuthenticationTests {
    static let podRoutes: [(String, HTTPRequest.Method)] = [("manifest", .get), ("progress", .get), ("results", .post)]

    @Test func podRoutes_withoutAToken_orWithAMalformedHeader_are401_withABearerChallenge() async throws {
        try await RouterFixture.with { f in
            try await f.pods { client in
                for (route, method) in Self.podRoutes {
                    for headers: HTTPFields in [[:], [.authorization: "Basic dXNlcjpwYXNz"], [.authorization: "Bearer"], [.authorization: "Bearer    "], [.authorization: f.token(f.batchA)]] {
                        let response = try await client.execute(uri: "/v1/batches/\(f.batchA)/\(route)", method: method, headers: headers)
                        #expect(response.status == .unauthorized, "\(route) \(headers)")
                        #expect(response.headers[.wwwAuthenticate] == #"Bearer realm="spotq""#)
                        #expect(response.refusal == "an Authorization: Bearer <batch upload token> header is required", "\(response.text)")
                    }
                }
            }
        }
    }

    @Test func podRoutes_withAWrongToken_orAnotherBatchsToken_are403_andRevealNothing() async throws {
        try await RouterFixture.with { f in
            try await f.pods { client in
                for (route, method) in Self.podRoutes {
                    for token in ["sqb1_nonsense", f.token(f.batchB)] {
                        let response = try await client.execute(uri: "/v1/batches/\(f.batchA)/\(route)", method: method, headers: RouterFixture.bearer(token))
                        #expect(response.status == .forbidden, "\(route)")
                        #expect(response.refusal == "this token is not valid for batch \(f.batchA)", "\(response.text)")
                        #expect(response.headers[.wwwAuthenticate] == nil)
                    }
                    // A batch that does not exist answers as a wrong token does.
                    let unknown = try await client.execute(uri: "/v1/batches/999999/\(route)", method: method, headers: RouterFixture.bearer(f.token(f.batchA)))
                    #expect(unknown.status == .forbidden)
                    #expect(unknown.refusal == "this token is not valid for batch 999999")
                    let notAnID = try await client.execute(uri: "/v1/batches/abc/\(route)", method: method, headers: RouterFixture.bearer(f.token(f.batchA)))
                    #expect(notAnID.status == .notFound)
                    #expect(notAnID.refusal == "no such batch")
                }
            }
            #expect(try await f.postgres.count("SELECT count(*) FROM image_generation_files") == 0)
        }
    }

    /// A pod's own token (minted per rental) answers for its batch while the pod lives, not
    /// for another batch, and is refused with 401 once the pod is terminated.
    @Test func aPodsOwnToken_isValidForItsBatchWhileItLives_andRevokedWithIt() async throws {
        try await RouterFixture.with { f in
            let token = BatchToken.makePodToken()
            let pods = PodStore(client: f.postgres)
            let pod = try await pods.insertRequested(PodStore.Request(
                batchID: f.batchA, provider: "devcloud", name: "spotq-b\(f.batchA)-x", gpuType: "NVIDIA RTX A4000", gpuCount: 1, interruptible: false,
                bidUSDPerGPUHour: nil, volumeGB: 12, containerDiskGB: 1, storageUSDPerGBMonth: 0.1), uploadTokenHash: BatchToken.hash(token))
            try await f.pods { client in
                let manifest = try await client.execute(uri: "/v1/batches/\(f.batchA)/manifest", method: .get, headers: RouterFixture.bearer(token))
                #expect(manifest.status == .ok)
                let other = try await client.execute(uri: "/v1/batches/\(f.batchB)/manifest", method: .get, headers: RouterFixture.bearer(token))
                #expect(other.status == .forbidden)
                #expect(other.refusal == "this token is not valid for batch \(f.batchB)")
            }
            try await pods.terminated(pod, reason: "test")
            try await f.pods { client in
                for (route, method) in Self.podRoutes {
                    let response = try await client.execute(uri: "/v1/batches/\(f.batchA)/\(route)", method: method, headers: RouterFixture.bearer(token))
                    #expect(response.status == .unauthorized, "\(route)")
                    #expect(response.refusal == "this pod's token was revoked when the pod was terminated", "\(response.text)")
                }
            }
        }
    }

    @Test func podRoutes_withTheBatchsToken_answerForThatBatch() async throws {
        try await RouterFixture.with { f in
            try await f.pods { client in
                let manifest = try await client.execute(uri: "/v1/batches/\(f.batchA)/manifest", method: .get, headers: RouterFixture.bearer(f.token(f.batchA)))
                #expect(manifest.status == .ok)
                #expect(manifest.headers[.contentType] == "application/json")
                #expect(try JSONDecoder().decode(BatchManifest.self, from: Data(buffer: manifest.body)).batchID == f.batchA)
                let progress = try await client.execute(uri: "/v1/batches/\(f.batchB)/progress", method: .get, headers: RouterFixture.bearer(f.token(f.batchB)))
                #expect(progress.status == .ok)
                let answer = try JSONDecoder().decode(ProgressAnswer.self, from: Data(buffer: progress.body))
                #expect(answer == ProgressAnswer(batchID: f.batchB, items: 3, done: 0, failed: 0, remaining: 3))
            }
        }
    }

    @Test func opsRoutes_needTheAdminToken_503WhenUnset_401WhenMissing_403WhenWrong() async throws {
        try await RouterFixture.with { f in
            try await f.ops(adminToken: nil) { client in
                let unset = try await client.execute(uri: "/v1/ops/overview", method: .get, headers: RouterFixture.bearer(RouterFixture.adminToken))
                #expect(unset.status == .serviceUnavailable)
                #expect(unset.refusal?.contains("set SPOTQ_ADMIN_TOKEN") == true)
            }
            try await f.ops { client in
                for headers: HTTPFields in [[:], [.authorization: "Basic YWRtaW4="], [.authorization: RouterFixture.adminToken]] {
                    let missing = try await client.execute(uri: "/v1/ops/overview", method: .get, headers: headers)
                    #expect(missing.status == .unauthorized)
                    #expect(missing.headers[.wwwAuthenticate] == #"Bearer realm="spotq-admin""#)
                    #expect(missing.refusal == "an Authorization: Bearer <SPOTQ_ADMIN_TOKEN> header is required")
                }
                for path in ["/v1/ops/overview", "/v1/ops/dead-letters/1/replay"] {
                    let wrong = try await client.execute(uri: path, method: path.hasSuffix("replay") ? .post : .get, headers: RouterFixture.bearer("wrong-token-wrong-token-wrong-token"))
                    #expect(wrong.status == .forbidden)
                    #expect(wrong.refusal == "wrong admin token")
                }
                let overview = try await client.execute(uri: "/v1/ops/overview", method: .get, headers: RouterFixture.bearer(RouterFixture.adminToken))
                #expect(overview.status == .ok)
                #expect(overview.headers[.cacheControl] == "no-store")
                let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: overview.body)) as? [String: Any])
                #expect((object["batches"] as? [Any])?.count == 2)
                // The page itself needs no token: it asks for one.
                let page = try await client.execute(uri: "/", method: .get)
                #expect(page.status == .ok)
                #expect(page.headers[.contentSecurityPolicy]?.hasPrefix("default-src 'none'") == true)
            }
        }
    }

    @Test func aReplayFromAForeignOrigin_isRefused_evenWithTheAdminToken() async throws {
        try await RouterFixture.with { f in
            try await f.ops { client in
                var headers = RouterFixture.bearer(RouterFixture.adminToken)
                headers[.origin] = "https://evil.example"
                let foreign = try await client.execute(uri: "/v1/ops/dead-letters/1/replay", method: .post, headers: headers)
                #expect(foreign.status == .forbidden)
                #expect(foreign.refusal == "cross-site request refused (Origin https://evil.example is not localhost)")
                // From its own origin the request goes through to the replay (none without a broker).
                headers[.origin] = "http://localhost"
                let own = try await client.execute(uri: "/v1/ops/dead-letters/1/replay", method: .post, headers: headers)
                #expect(own.status == .serviceUnavailable)
                #expect(own.refusal?.contains("no broker connection") == true)
            }
        }
    }

    @Test func eachListener_servesOnlyItsOwnRoutes_andBothAnswerHealthz() async throws {
        try await RouterFixture.with { f in
            try await f.pods { client in
                let health = try await client.execute(uri: "/healthz", method: .get)
                #expect(health.status == .ok)
                for path in ["/metrics", "/", "/v1/ops/overview"] {
                    let response = try await client.execute(uri: path, method: .get, headers: RouterFixture.bearer(RouterFixture.adminToken))
                    #expect(response.status == .notFound, "\(path)")
                }
            }
            try await f.ops { client in
                let health = try await client.execute(uri: "/healthz", method: .get)
                #expect(health.status == .ok)
                let metrics = try await client.execute(uri: "/metrics", method: .get)
                #expect(metrics.status == .ok)
                let manifest = try await client.execute(uri: "/v1/batches/\(f.batchA)/manifest", method: .get, headers: RouterFixture.bearer(f.token(f.batchA)))
                #expect(manifest.status == .notFound)
            }
        }
    }
}
