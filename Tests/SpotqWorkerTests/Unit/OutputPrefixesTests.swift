import Foundation
import Testing
@testable import SpotqWorker

@Suite struct OutputPrefixesTests {
    @Test func everyFilenamePrefixGetsTheAttempts_andNothingElseChanges() throws {
        let workflow = #"{"3": {"class_type": "KSampler", "inputs": {"seed": 18446744073709551615, "cfg": 7.5, "model": ["4", 0]}}, "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "spotq/b7/item", "images": ["8", 0]}}, "10": {"class_type": "SaveImage", "inputs": {"filename_prefix": "second", "images": ["8", 0]}}}"#
        let rewritten = try OutputPrefixes.unique(workflow, attempt: "1a2b3c4d")
        let nodes = try #require(try JSONSerialization.jsonObject(with: Data(rewritten.utf8)) as? [String: [String: Any]])
        #expect((nodes["9"]?["inputs"] as? [String: Any])?["filename_prefix"] as? String == "spotq/b7/item_1a2b3c4d")
        #expect((nodes["10"]?["inputs"] as? [String: Any])?["filename_prefix"] as? String == "second_1a2b3c4d")
        // A 64-bit seed comes back whole, in the text ComfyUI reads.
        #expect(rewritten.contains(#""seed":18446744073709551615"#))
        #expect(rewritten.contains(#""cfg":7.5"#) && rewritten.contains(#""model":["4",0]"#))
    }

    @Test func aWorkflowWithoutPrefixesIsSentAsItCame() throws {
        let workflow = #"{"1": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}}"#
        #expect(try OutputPrefixes.unique(workflow, attempt: "x") == workflow)
    }
}
