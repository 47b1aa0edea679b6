import CurlClient
import Foundation
import SpotqTestSupport
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A client for one test; dropped (and its thread ended) when the test ends.
func makeClient(_ configure: (inout CurlConfiguration) -> Void = { _ in }) throws -> HTTPClient {
    var configuration = CurlConfiguration(connectTimeout: .seconds(5), requestTimeout: .seconds(10))
    configure(&configuration)
    var logger = Logger(label: "curl-client-tests")
    logger.logLevel = .info
    return try HTTPClient(configuration: configuration, logger: logger)
}

/// A fresh directory for one test's files, removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("curlclient-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

func fileExists(_ url: URL) -> Bool {
    FileManager.default.fileExists(atPath: url.path)
}

func fileSize(_ url: URL) -> Int? {
    (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue
}

/// A loopback port nothing listens on: bound, read back, released.
func unusedLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestFailure("socket() failed") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
            bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
        }
    }
    guard bound else { throw TestFailure("bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits for the first element of `stream` that matches, failing after `limit`.
func first<T: Sendable>(
    of stream: AsyncStream<T>, within limit: Duration, where matches: @escaping @Sendable (T) -> Bool
) async throws -> T {
    let value = try await withTimeout(limit, "a matching event") { await stream.first(where: matches) }
    guard let value else { throw TestFailure("the stream ended without a matching event") }
    return value
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
