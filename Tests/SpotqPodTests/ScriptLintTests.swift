import Foundation
import SpotqTestSupport
import Testing

/// Every shell script in the repository passes ShellCheck (Debian's, which install-deps installs).
@Suite struct ScriptLintTests {
    @Test func everyShellScriptIsShellCheckClean() async throws {
        let root = TestEnvironment.packageRoot()
        let listed = try await Shell.capture("/usr/bin/git", ["-C", root.path, "ls-files", "--cached", "--others", "--exclude-standard", "*.sh"])
        let scripts = listed.output.split(separator: "\n").map { root.appendingPathComponent(String($0)).path }
        #expect(scripts.contains { $0.hasSuffix("Sources/SpotqPod/bootstrap.sh") }, "\(scripts)")
        let checked = try await Shell.capture("/usr/bin/shellcheck", ["--format=gcc"] + scripts)
        #expect(checked.exitCode == 0, "\(checked.output)")
    }
}
