import CurlClient
import Foundation
import Testing

@Suite("HTTPClient uploads")
struct UploadTests {
    @Test func uploadFile_streamsFromDisk_serverSHA256MatchesOurs() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let size = 700_001
                let file = directory.appendingPathComponent("bundle.zip")
                try Data(TestContent.bytes(0..<size)).write(to: file)
                let response = try await client.upload(
                    fileAt: file.path, to: server.url("/upload"), method: .put, contentType: "application/zip")
                let reply = try response.requireSuccess().decode(UploadReply.self)
                #expect(reply.length == size)
                #expect(reply.sha256 == TestContent.sha256Hex(size: size))
                #expect(reply.contentType == "application/zip")
                #expect(reply.method == "PUT")
            }
        }
    }

    @Test func uploadBytes_withPost_serverSHA256MatchesOurs() async throws {
        try await TestServer.run { server in
            let client = try makeClient()
            let bytes = TestContent.bytes(0..<123_457)
            let response = try await client.upload(
                bytes, to: server.url("/upload"), method: .post, contentType: "application/octet-stream")
            let reply = try response.requireSuccess().decode(UploadReply.self)
            #expect(reply.length == bytes.count)
            #expect(reply.sha256 == TestContent.sha256Hex(bytes))
            #expect(reply.method == "POST")
        }
    }

    @Test func uploadFile_throughA307Redirect_resendsTheWholeBody() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let file = directory.appendingPathComponent("again.bin")
                try Data(TestContent.bytes(0..<50_000)).write(to: file)
                let response = try await client.upload(
                    fileAt: file.path, to: server.url("/redirect?to=%2Fupload"), method: .post)
                let reply = try response.requireSuccess().decode(UploadReply.self)
                #expect(reply.length == 50_000)
                #expect(reply.sha256 == TestContent.sha256Hex(size: 50_000))
            }
        }
    }

    @Test func uploadFile_whenFileIsMissing_throwsIO() async throws {
        let client = try makeClient()
        let error = await #expect(throws: HTTPClientError.self) {
            _ = try await client.upload(fileAt: "/nonexistent/file.bin", to: "http://127.0.0.1:9/upload")
        }
        #expect(error?.code == .io)
    }
}
