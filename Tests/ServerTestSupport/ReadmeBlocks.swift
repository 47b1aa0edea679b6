import Foundation
import SpotqTestSupport

/// The README's code blocks that tests run as they are, found by the
/// `<!-- test:NAME -->` comment on the line before the block: the README cannot drift
/// from what works.
enum ReadmeBlocks {
    static func block(_ name: String) throws -> String {
        let readme = try String(contentsOf: TestEnvironment.packageRoot().appendingPathComponent("README.md"), encoding: .utf8)
        guard let marker = readme.range(of: "<!-- test:\(name) -->") else {
            throw TestEnvironmentError(description: "README.md has no <!-- test:\(name) --> block")
        }
        let rest = readme[marker.upperBound...]
        guard let open = rest.range(of: "```"), let lineEnd = rest[open.upperBound...].firstIndex(of: "\n"),
              let close = rest[lineEnd...].range(of: "\n```")
        else {
            throw TestEnvironmentError(description: "README.md's \(name) block is not a fenced code block")
        }
        return String(rest[rest.index(after: lineEnd)..<close.lowerBound])
    }

    /// The Python interpreter of .spotq/venv (scripts/install-python-clients.sh).
    static func python() throws -> String {
        let path = TestEnvironment.packageRoot().appendingPathComponent(".spotq/venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestEnvironmentError(description: "\(path) is missing: run scripts/install-python-clients.sh (make test does)")
        }
        return path
    }

    /// psql from Debian's postgresql-client.
    static func psql() throws -> String {
        for path in ["/usr/bin/psql", "/usr/lib/postgresql/15/bin/psql"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw TestEnvironmentError(description: "psql is missing: run scripts/install-deps.sh")
    }
}
