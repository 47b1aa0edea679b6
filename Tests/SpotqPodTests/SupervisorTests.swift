import Foundation
import ProcessLauncher
import SpotqTestSupport
import Testing

/// `spotq supervise` as the bootstrap runs it: a real process supervising real processes.
@Suite struct SupervisorTests {
    /// Runs `spotq supervise ARGS -- /bin/sh -c SCRIPT` in `folder`; its output in `supervise.out`.
    static func supervise(_ folder: URL, _ arguments: [String], script: String) throws -> LaunchedProcess {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try LaunchedProcess(
            executable: try ChildProcess.spotqBinary(),
            arguments: ["supervise", "--log", folder.appendingPathComponent("child.log").path] + arguments + ["--", "/bin/sh", "-c", "cd '\(folder.path)' && \(script)"],
            environment: ProcessInfo.processInfo.environment, outputPath: folder.appendingPathComponent("supervise.out").path)
    }

    static func log(_ folder: URL) -> String { (try? String(contentsOf: folder.appendingPathComponent("child.log"), encoding: .utf8)) ?? "" }

    @Test func aCrashingChildIsRestarted_untilItExitsWithAFinalStatus_whichTheSupervisorExitsWith() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_supervise"))
        defer { try? FileManager.default.removeItem(at: folder) }
        // Runs 1 and 2 crash (status 7); run 3 exits 3, which is final.
        let supervisor = try Self.supervise(folder, ["--name", "worker", "--no-restart", "0,3,4,5", "--restart-delay", "0.05"], script: """
            n=$(cat runs 2>/dev/null || echo 0); n=$((n + 1)); echo $n > runs; echo "run $n"; [ $n -ge 3 ] && exit 3; exit 7
            """)
        let status = await supervisor.wait(timeout: .seconds(30))
        #expect(status == 3)
        let log = Self.log(folder)
        #expect(log.components(separatedBy: "worker: started").count - 1 == 3, "\(log)")
        #expect(log.contains("run 1") && log.contains("run 3"))
        #expect(log.contains("worker: exited with status 7; restarting in 0.05 seconds"))
        #expect(log.contains("worker: exited with status 7; restarting in 0.1 seconds"), "the second quick crash doubles the delay: \(log)")
        #expect(log.contains("worker: exited with status 3; not restarted"))
    }

    @Test func aSIGKILLedChildIsStartedAgain() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_supervise"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let supervisor = try Self.supervise(folder, ["--name", "worker", "--restart-delay", "0.05"], script: "echo $$ >> pids; exec sleep 600")
        defer { supervisor.signal(SIGKILL) }
        let first = try await eventually("the first child runs") { Self.pids(folder).first }
        kill(first, SIGKILL)
        let second = try await eventually("a second child runs") { Self.pids(folder).dropFirst().first }
        #expect(second != first)
        #expect(Self.log(folder).contains("worker: was killed by signal 9; restarting in 0.05 seconds"))
        supervisor.signal(SIGTERM)
        #expect(await supervisor.wait(timeout: .seconds(10)) == 143)
    }

    @Test func aTerminationSignalIsForwardedAtOnce_andEndsSupervisionWithTheChildsStatus() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_supervise"))
        defer { try? FileManager.default.removeItem(at: folder) }
        // The child hands its work back on SIGTERM and exits 0, like the worker after a notice.
        let supervisor = try Self.supervise(folder, ["--name", "worker"], script: """
            trap 'echo handed-back; exit 0' TERM; echo ready > state; while :; do sleep 0.05; done
            """)
        defer { supervisor.signal(SIGKILL) }
        try await eventually("the child is ready") { FileManager.default.fileExists(atPath: folder.appendingPathComponent("state").path) }
        supervisor.signal(SIGTERM)
        // The child ends only on SIGTERM, so the supervisor's end proves it passed it on.
        let status = await supervisor.wait(timeout: .seconds(10))
        #expect(status == 0)
        let log = Self.log(folder)
        #expect(log.contains("worker: signal 15 received; forwarding SIGTERM"))
        #expect(log.contains("handed-back") && log.contains("worker: exited with status 0; not restarted"), "\(log)")
    }

    static func pids(_ folder: URL) -> [pid_t] {
        ((try? String(contentsOf: folder.appendingPathComponent("pids"), encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }
}
