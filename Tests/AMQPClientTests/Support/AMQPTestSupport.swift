import AMQPClient
import Foundation
import Logging
import SpotqTestSupport

/// Shared helpers for the AMQP integration tests: configuration from the test environment,
/// timeouts for every wait, and `rabbitmqctl` for forcing broker-side events.
enum AMQPTest {
    static let logger: Logger = {
        var logger = Logger(label: "spotq.amqp.tests")
        logger.logLevel = ProcessInfo.processInfo.environment["SPOTQ_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    /// The broker's URL; throws (the test fails) when no broker is configured.
    static func configuration(
        name: String = TestEnvironment.uniqueName("amqp_test"), heartbeatSeconds: Int = 30
    ) throws -> AMQPConfiguration {
        AMQPConfiguration(
            url: try TestEnvironment.amqpURL(), connectionName: name, heartbeatSeconds: heartbeatSeconds,
            connectTimeout: .seconds(5), handshakeTimeout: .seconds(5), rpcTimeout: .seconds(10),
            confirmTimeout: .seconds(10))
    }

    static func connect(name: String = TestEnvironment.uniqueName("amqp_test"), heartbeatSeconds: Int = 30) async throws -> AMQPConnection {
        try await AMQPConnection.connect(configuration: configuration(name: name, heartbeatSeconds: heartbeatSeconds), logger: logger)
    }

    /// Runs `body` with a fresh connection and channel, then deletes `queues` and `exchanges`
    /// (whether `body` succeeded or not) and closes the connection.
    static func withChannel<T: Sendable>(
        deleting queues: [String] = [], exchanges: [String] = [], _ body: (AMQPChannel) async throws -> T
    ) async throws -> T {
        let connection = try await connect()
        let result: Result<T, any Error>
        do {
            let channel = try await connection.openChannel()
            result = .success(try await body(channel))
        } catch {
            result = .failure(error)
        }
        await cleanUp(queues: queues, exchanges: exchanges)
        await connection.close()
        return try result.get()
    }

    /// Deletes the named queues and exchanges on a connection of its own, ignoring errors.
    static func cleanUp(queues: [String] = [], exchanges: [String] = []) async {
        guard !queues.isEmpty || !exchanges.isEmpty, let connection = try? await connect() else { return }
        _ = try? await connection.withChannel { channel in
            for queue in queues { _ = try? await channel.deleteQueue(queue) }
            for exchange in exchanges { try? await channel.deleteExchange(exchange) }
        }
        await connection.close()
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
}

/// Takes the next delivery within `seconds`; the iterator is shared, not restarted.
func nextDelivery(_ iterator: AMQPConsumer.Iterator, _ seconds: Double = 10) async throws -> AMQPDelivery? {
    try await withTimeout(.seconds(seconds), "waiting for a delivery") {
        var copy = iterator
        return try await copy.next()
    }
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}

/// `rabbitmqctl` against the test broker: `SPOTQ_RABBITMQCTL` from the environment or from
/// `.spotq/env` (written by `make services`).
enum RabbitMQCtl {
    static func command() throws -> String {
        if let value = ProcessInfo.processInfo.environment["SPOTQ_RABBITMQCTL"], !value.isEmpty { return value }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<5 {
            let file = directory.appendingPathComponent(".spotq/env")
            if let text = try? String(contentsOf: file, encoding: .utf8) {
                for line in text.split(separator: "\n") {
                    var line = line.trimmingCharacters(in: .whitespaces)
                    if line.hasPrefix("export ") { line.removeFirst("export ".count) }
                    guard line.hasPrefix("SPOTQ_RABBITMQCTL=") else { continue }
                    var value = String(line.dropFirst("SPOTQ_RABBITMQCTL=".count))
                    if value.count >= 2, value.first == value.last, value.first == "'" || value.first == "\"" {
                        value = String(value.dropFirst().dropLast())
                    }
                    return value
                }
            }
            directory.deleteLastPathComponent()
        }
        throw TestSetupError(description: "SPOTQ_RABBITMQCTL is not set and .spotq/env does not define it: run `make services` first")
    }

    /// Runs `rabbitmqctl -q <arguments>` and returns its standard output; throws on failure.
    static func run(_ arguments: [String]) async throws -> String {
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("rabbitmqctl-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\(try command()) -q \(quoted)"]
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        try handle.close()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw TestSetupError(description: "rabbitmqctl \(arguments.joined(separator: " ")) failed (\(status)): \(text)")
        }
        return text
    }

    /// The Erlang pid of the connection whose client property `connection_name` is `name`.
    /// (RabbitMQ 3.10's `name` column is the peer address; the given name shows in
    /// `client_properties` and in the management UI.)
    static func connectionPID(named name: String) async throws -> String? {
        let listing = try await run(["--no-table-headers", "list_connections", "pid", "client_properties"])
        let needle = #"{"connection_name","\#(name)"}"#
        for line in listing.split(separator: "\n") where line.contains(needle) {
            return line.split(separator: "\t").first.map(String.init)
        }
        return nil
    }

    /// Polls until the broker lists the connection named `name`, then returns its pid.
    static func waitForConnectionPID(named name: String, within seconds: Double = 60) async throws -> String {
        try await eventually("the broker lists connection \(name)", timeout: .seconds(seconds), poll: .milliseconds(200)) { try await connectionPID(named: name) }
    }
}
