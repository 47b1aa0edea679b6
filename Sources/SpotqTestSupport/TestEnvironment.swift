import Foundation

/// Where the integration tests find the real PostgreSQL and RabbitMQ.
///
/// `make services` starts both and writes `.spotq/env`; `make test` exports it. Running
/// `swift test` by hand after `make services` works too: the file is read directly when
/// the variables are not set. A missing server is a loud failure, never a skipped test.
public enum TestEnvironment {
    /// `SPOTQ_DATABASE_URL`, e.g. `postgresql://spotq@127.0.0.1:55432/spotq`.
    public static func databaseURL() throws -> String {
        try value(of: "SPOTQ_DATABASE_URL")
    }

    /// `SPOTQ_AMQP_URL`, e.g. `amqp://guest:guest@127.0.0.1:55672/%2F`.
    public static func amqpURL() throws -> String {
        try value(of: "SPOTQ_AMQP_URL")
    }

    /// The shared broker over TLS (`amqps://…@localhost:…`) and the CA that signed its
    /// certificate, as `scripts/services.sh` writes them.
    public static func amqpsURL() throws -> String {
        try value(of: "SPOTQ_AMQPS_URL")
    }

    public static func amqpCAFile() throws -> String {
        try value(of: "SPOTQ_AMQP_CA_FILE")
    }

    /// The shared broker's management API, with the administrator's credentials in it.
    public static func rabbitMQManagementURL() throws -> String {
        try value(of: "SPOTQ_RABBITMQ_MANAGEMENT_URL")
    }

    /// A name no other test run uses, for queues, exchanges, schemas and databases.
    /// Lowercase letters, digits and underscores only, so it is a valid SQL identifier.
    public static func uniqueName(_ prefix: String) -> String {
        let suffix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        return "\(prefix)_\(suffix)"
    }

    /// The absolute path of `scripts/NAME` in this checkout.
    public static func script(_ name: String) throws -> String {
        let path = packageRoot().appendingPathComponent("scripts").appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestEnvironmentError(description: "\(path) is missing or not executable")
        }
        return path
    }

    /// The checkout's root folder (where Package.swift is), found from this file's path.
    public static func packageRoot() -> URL {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<4 {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                return directory
            }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    /// A variable from the environment, else from `.spotq/env`; throws saying how to get it.
    public static func value(of name: String) throws -> String {
        if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty {
            return value
        }
        if let value = envFileValues()[name], !value.isEmpty {
            return value
        }
        throw TestEnvironmentError(
            description: "\(name) is not set and .spotq/env does not define it: run `make services` first "
                + "(or `make test`, which starts PostgreSQL and RabbitMQ itself)")
    }

    /// `export NAME=value` lines of `.spotq/env` in the package root.
    static func envFileValues() -> [String: String] {
        let file = packageRoot().appendingPathComponent(".spotq/env")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [:] }
        return parseEnvFile(text)
    }

    static func parseEnvFile(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for rawLine in text.split(separator: "\n") {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("export ") { line.removeFirst("export ".count) }
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            let key = String(line[..<equals])
            var value = String(line[line.index(after: equals)...])
            if value.count >= 2, value.first == value.last, value.first == "'" || value.first == "\"" {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }
}

public struct TestEnvironmentError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}
