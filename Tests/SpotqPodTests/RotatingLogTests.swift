import Foundation
import SpotqPod
import SpotqTestSupport
import Testing

@Suite struct RotatingLogTests {
    @Test func aLogPastItsSizeIsRotated_andOnlyTheNewestFilesAreKept() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_log"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("worker.log").path
        let log = try RotatingLog(path: path, maxBytes: 10, keep: 2)
        for line in ["first-run\n", "second-r\n", "third-ru\n", "fourth\n"] { try log.write(Array(line.utf8)) }
        log.close()
        func read(_ name: String) -> String? { try? String(contentsOfFile: name, encoding: .utf8) }
        #expect(read(path) == "fourth\n")
        #expect(read(path + ".1") == "third-ru\n")
        #expect(read(path + ".2") == "second-r\n")
        #expect(read(path + ".3") == nil, "only two rotated files are kept")
    }

    @Test func aLogIsAppendedToAcrossRestarts() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_log"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("comfyui.log").path
        for line in ["one\n", "two\n"] {
            let log = try RotatingLog(path: path, maxBytes: 1_000, keep: 1)
            try log.write(Array(line.utf8))
            log.close()
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "one\ntwo\n")
    }
}
