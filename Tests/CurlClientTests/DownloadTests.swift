import CurlClient
import Foundation
import Testing

@Suite("HTTPClient downloads")
struct DownloadTests {
    @Test func download_fresh_verifiesSHA256AndMovesIntoPlace() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("model.safetensors")
                let size = 300_000
                let progress = ProgressRecorder()
                let result = try await client.download(
                    server.url("/files/\(size)"), to: destination,
                    expectedSHA256: TestContent.sha256Hex(size: size).uppercased(), expectedSize: Int64(size),
                    progress: { progress.record($0) })

                #expect(result == DownloadResult(
                    totalBytes: Int64(size), fetchedBytes: Int64(size), resumedFrom: 0,
                    sha256: TestContent.sha256Hex(size: size), httpStatus: 200))
                #expect(try Data(contentsOf: destination) == Data(TestContent.bytes(0..<size)))
                #expect(!fileExists(HTTPClient.partialFileURL(for: destination)))
                let reports = progress.reports
                #expect(reports.last?.receivedBytes == Int64(size))
                #expect(reports.last?.expectedBytes == Int64(size))
                #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.receivedBytes <= $1.receivedBytes })
                #expect(await server.log.entries(forPath: "/files/\(size)").map(\.range) == [nil])
            }
        }
    }

    @Test func download_whenCutOffHalfway_throwsRetryableAndKeepsPartial_thenResumesWithRangeAndVerifies() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("lora.safetensors")
                let partial = HTTPClient.partialFileURL(for: destination)
                let size = 256 * 1024
                let url = server.url("/files/\(size)?cutOnce=\(UUID().uuidString)")
                let sha = TestContent.sha256Hex(size: size)

                let error = await #expect(throws: HTTPClientError.self) {
                    _ = try await client.download(url, to: destination, expectedSHA256: sha, expectedSize: Int64(size))
                }
                #expect(error?.code == .partialTransfer)
                #expect(error?.isRetryable == true)
                #expect(!fileExists(destination))
                let kept = try #require(fileSize(partial))
                #expect(kept > 0 && kept <= size / 2)
                #expect(try Data(contentsOf: partial) == Data(TestContent.bytes(0..<kept)))

                let result = try await client.download(url, to: destination, expectedSHA256: sha, expectedSize: Int64(size))
                #expect(result.httpStatus == 206)
                #expect(result.resumedFrom == Int64(kept))
                #expect(result.fetchedBytes == Int64(size - kept))
                #expect(result.sha256 == sha)
                #expect(try Data(contentsOf: destination) == Data(TestContent.bytes(0..<size)))
                #expect(!fileExists(partial))
                let ranges = await server.log.entries(forPath: "/files/\(size)").map(\.range)
                #expect(ranges == [nil, "bytes=\(kept)-"])
            }
        }
    }

    @Test func download_whenChecksumMismatches_throwsAndDeletesFileAndPartial() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("bad.bin")
                let wrong = String(repeating: "ab", count: 32)
                let error = await #expect(throws: HTTPClientError.self) {
                    _ = try await client.download(server.url("/files/5000"), to: destination, expectedSHA256: wrong)
                }
                #expect(error?.code == .checksumMismatch)
                #expect(error?.isRetryable == false)
                #expect(!fileExists(destination))
                #expect(!fileExists(HTTPClient.partialFileURL(for: destination)))
            }
        }
    }

    @Test func download_whenSizeMismatches_throwsAndDeletesPartial() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("short.bin")
                let error = await #expect(throws: HTTPClientError.self) {
                    _ = try await client.download(server.url("/files/5000"), to: destination, expectedSize: 6000)
                }
                #expect(error?.code == .sizeMismatch)
                #expect(!fileExists(destination))
                #expect(!fileExists(HTTPClient.partialFileURL(for: destination)))
            }
        }
    }

    @Test func download_whenServerIgnoresRange_restartsFromZeroAndGetsTheRightFile() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("model.bin")
                let size = 40_000
                // A partial whose bytes are wrong: only a full restart can produce the right file.
                try Data(repeating: 0xEE, count: 1000).write(to: HTTPClient.partialFileURL(for: destination))
                let result = try await client.download(
                    server.url("/files/\(size)?ignoreRange=1"), to: destination,
                    expectedSHA256: TestContent.sha256Hex(size: size))
                #expect(result.httpStatus == 200)
                #expect(result.resumedFrom == 0)
                #expect(result.totalBytes == Int64(size))
                #expect(try Data(contentsOf: destination) == Data(TestContent.bytes(0..<size)))
                #expect(await server.log.entries(forPath: "/files/\(size)").map(\.range) == ["bytes=1000-"])
            }
        }
    }

    @Test func download_whenPartialIsAlreadyComplete_acceptsThe416AndVerifies() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("done.bin")
                let size = 8192
                try Data(TestContent.bytes(0..<size)).write(to: HTTPClient.partialFileURL(for: destination))
                let result = try await client.download(
                    server.url("/files/\(size)"), to: destination, expectedSHA256: TestContent.sha256Hex(size: size))
                #expect(result.httpStatus == 416)
                #expect(result.fetchedBytes == 0)
                #expect(result.resumedFrom == Int64(size))
                #expect(fileSize(destination) == size)
            }
        }
    }

    @Test func download_whenPartialIsLongerThanTheFile_restartsFromZero() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("stale.bin")
                try Data(repeating: 1, count: 9000).write(to: HTTPClient.partialFileURL(for: destination))
                let result = try await client.download(server.url("/files/5000"), to: destination)
                #expect(result.totalBytes == 5000)
                #expect(result.sha256 == TestContent.sha256Hex(size: 5000))
                #expect(await server.log.entries(forPath: "/files/5000").map(\.range) == ["bytes=9000-", nil])
            }
        }
    }

    @Test func download_whenNotFound_throwsHTTPStatusAndCreatesNoFile() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("missing.bin")
                let error = await #expect(throws: HTTPClientError.self) {
                    _ = try await client.download(server.url("/status/404?token=abcdef123456"), to: destination)
                }
                #expect(error?.code == .httpStatus)
                #expect(error?.httpStatus == 404)
                #expect(error?.isRetryable == false)
                #expect(error?.description.contains("abcdef123456") == false)
                #expect(!fileExists(destination))
                #expect(!fileExists(HTTPClient.partialFileURL(for: destination)))
            }
        }
    }

    @Test func download_whenErrorStatusAfterPartialProgress_keepsPartialForLaterResume() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("later.bin")
                let partial = HTTPClient.partialFileURL(for: destination)
                try Data(TestContent.bytes(0..<100)).write(to: partial)
                let error = await #expect(throws: HTTPClientError.self) {
                    _ = try await client.download(server.url("/status/503"), to: destination)
                }
                #expect(error?.isRetryable == true)
                #expect(fileSize(partial) == 100)
            }
        }
    }

    @Test func download_followsRedirect() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("cdn.bin")
                let result = try await client.download(
                    server.url("/redirect?to=%2Ffiles%2F20000"), to: destination,
                    expectedSHA256: TestContent.sha256Hex(size: 20000))
                #expect(result.totalBytes == 20000)
            }
        }
    }

    /// A lower bound only: the cap can make a download slower, never faster, so this cannot
    /// flake on a busy machine.
    @Test func download_withSpeedCap_takesAtLeastSizeOverCap() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("capped.bin")
                let started = ContinuousClock.now
                let result = try await client.download(
                    server.url("/files/262144"), to: destination, maxBytesPerSecond: 128 * 1024)
                #expect(result.totalBytes == 262_144)
                #expect(ContinuousClock.now - started >= .seconds(1))
            }
        }
    }

    @Test func download_whenStalled_throwsRetryableTimeoutAndKeepsPartial() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                // A 50 kB burst, then a minute of silence. The stall window counts from the
                // request's start, so it must be long enough for the burst to arrive on a machine
                // busy with the whole suite (CI once took 3.3 s to end a 300 ms timeout): 10 s.
                let client = try makeClient {
                    $0.stallTimeout = .seconds(10)
                    $0.stallMinimumBytesPerSecond = 100_000
                }
                let destination = directory.appendingPathComponent("stalled.bin")
                let error = await #expect(throws: HTTPClientError.self) {
                    _ = try await client.download(
                        server.url("/trickle/1000000?chunk=50000&intervalMs=60000"), to: destination)
                }
                #expect(error?.code == .timeout)
                #expect(error?.isRetryable == true)
                #expect((fileSize(HTTPClient.partialFileURL(for: destination)) ?? 0) > 0)
            }
        }
    }

    @Test func download_whenTaskIsCancelled_throwsCancellationErrorPromptlyAndKeepsPartial() async throws {
        try await TestServer.run { server in
            try await withTemporaryDirectory { directory in
                let client = try makeClient()
                let destination = directory.appendingPathComponent("cancelled.bin")
                let (events, continuation) = AsyncStream.makeStream(of: DownloadProgress.self)
                let task = Task {
                    try await client.download(
                        server.url("/trickle/10000000?chunk=2048&intervalMs=20"), to: destination,
                        progress: { continuation.yield($0) })
                }
                _ = try await first(of: events, within: .seconds(5)) { $0.receivedBytes > 0 }
                let cancelledAt = ContinuousClock.now
                task.cancel()
                await #expect(throws: CancellationError.self) { _ = try await task.value }
                // Far sooner than the 100 s the trickle takes (loose, for a busy CI).
                #expect(ContinuousClock.now - cancelledAt < .seconds(20))
                #expect(!fileExists(destination))
                #expect((fileSize(HTTPClient.partialFileURL(for: destination)) ?? 0) > 0)
            }
        }
    }

    @Test func download_withMalformedExpectedSHA256_throwsInvalidArgumentBeforeAnyRequest() async throws {
        let client = try makeClient()
        let error = await #expect(throws: HTTPClientError.self) {
            _ = try await client.download(
                "http://127.0.0.1:9/x", to: URL(fileURLWithPath: "/tmp/never"), expectedSHA256: "abc")
        }
        #expect(error?.code == .invalidArgument)
    }
}

/// Collects progress reports from the client's thread.
final class ProgressRecorder: @unchecked Sendable {
    // `@unchecked Sendable`: `stored` is only touched with `lock` held.
    private let lock = NSLock()
    private var stored: [DownloadProgress] = []

    func record(_ progress: DownloadProgress) {
        lock.withLock { stored.append(progress) }
    }

    var reports: [DownloadProgress] { lock.withLock { stored } }
}
