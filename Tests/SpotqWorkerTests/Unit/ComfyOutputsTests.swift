import Foundation
import Testing

@testable import SpotqWorker

/// Deleting a stored image from ComfyUI's output folder, on a real file system: the file the
/// history names goes, and nothing outside the folder ever does.
@Suite("pod worker: deleting ComfyUI's outputs")
struct ComfyOutputsTests {
    static func folder() throws -> (root: URL, output: URL) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-outputs-\(UUID().uuidString)")
        let output = root.appendingPathComponent("output")
        try FileManager.default.createDirectory(at: output.appendingPathComponent("spotq/batch7"), withIntermediateDirectories: true)
        return (root, output)
    }

    static func image(_ subfolder: String, _ filename: String) -> ComfyClient.Image {
        ComfyClient.Image(filename: filename, subfolder: subfolder, data: Data())
    }

    @Test func theHistorysFile_isDeleted_inItsSubfolder() throws {
        let (root, output) = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let top = output.appendingPathComponent("spotq_00001_.png")
        let nested = output.appendingPathComponent("spotq/batch7/item_00001_.png")
        for file in [top, nested] { try Data("png".utf8).write(to: file) }
        let problems = ComfyOutputs(directory: output).delete([Self.image("", "spotq_00001_.png"), Self.image("spotq/batch7", "item_00001_.png")])
        #expect(problems.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: top.path))
        #expect(!FileManager.default.fileExists(atPath: nested.path))
    }

    @Test func aNameReachingOutsideTheOutputFolder_isRefused_andNothingThereIsDeleted() throws {
        let (root, output) = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let victim = root.appendingPathComponent("victim.png")
        try Data("keep".utf8).write(to: victim)
        // A symlinked subfolder leading out, as a hostile pod image could lay down.
        try FileManager.default.createSymbolicLink(at: output.appendingPathComponent("out"), withDestinationURL: root)
        let hostile = [
            Self.image("..", "victim.png"), Self.image("spotq/../..", "victim.png"), Self.image(root.path, "victim.png"),
            Self.image("", "../victim.png"), Self.image("out", "victim.png"), Self.image("", ".."), Self.image("", ""),
        ]
        let problems = ComfyOutputs(directory: output).delete(hostile)
        #expect(problems.count == hostile.count, "\(problems)")
        #expect(problems.allSatisfy { $0.hasPrefix("not deleted:") }, "\(problems)")
        #expect(FileManager.default.fileExists(atPath: victim.path))
        #expect(FileManager.default.fileExists(atPath: output.path))
    }

    @Test func aMissingFileOrADirectory_isReported_notDeleted() throws {
        let (root, output) = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let problems = ComfyOutputs(directory: output).delete([Self.image("", "gone.png"), Self.image("spotq", "batch7")])
        #expect(problems.count == 2)
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("spotq/batch7").path))
    }
}
