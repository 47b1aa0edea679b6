import SpotqCore
import Testing

@Suite("assets import: file parsing")
struct AssetFileParserTests {
    let sha = String(repeating: "ab", count: 32)

    @Test func json_arrayAndWrappedObject_parseTheSameAssets() throws {
        let entry = #"{"filename": "base.safetensors", "kind": "checkpoint", "size_bytes": 6938040682, "sha256": "\#(sha.uppercased())", "source_url": "https://h.example/base.safetensors"}"#
        let fromArray = try AssetFileParser.parse(Array("[\(entry)]".utf8), format: .json)
        let fromObject = try AssetFileParser.parse(Array(#"{"assets": [\#(entry)]}"#.utf8), format: .json)
        #expect(fromArray == fromObject)
        #expect(fromArray == [Asset(filename: "base.safetensors", kind: .checkpoint, sizeBytes: 6_938_040_682, sha256: sha, sourceURL: "https://h.example/base.safetensors")])
    }

    @Test func csv_withQuotesBOMAndCRLF_parses() throws {
        let text = "\u{FEFF}filename,kind,size_bytes,sha256,source_url\r\nstyle.safetensors,lora,100,\(sha),\"https://h.example/a,b.safetensors\"\r\n\r\n"
        let assets = try AssetFileParser.parse(Array(text.utf8), format: .csv)
        #expect(assets == [Asset(filename: "style.safetensors", kind: .lora, sizeBytes: 100, sha256: sha, sourceURL: "https://h.example/a,b.safetensors")])
    }

    @Test func aSourceURLWithANUL_isRefusedWithItsPlace_beforeAnythingReachesTheDatabase() {
        let entry = #"[{"filename": "a.safetensors", "kind": "lora", "size_bytes": 1, "sha256": "\#(sha)", "source_url": "https://h.example/a\u0000b"}]"#
        #expect {
            try AssetFileParser.parse(Array(entry.utf8), format: .json)
        } throws: { error in
            (error as? AssetFileError)?.problems == ["assets[0]: source_url contains control characters"]
        }
    }

    @Test func csv_withBadRows_reportsEveryProblemWithItsLine() {
        let text = """
            filename,kind,size_bytes,sha256,source_url
            ../evil.safetensors,checkpoint,10,\(sha),https://h.example/x
            ok.safetensors,model,10,\(sha),https://h.example/x
            ok2.safetensors,lora,-1,xyz,ftp://h.example/x
            """
        #expect {
            try AssetFileParser.parse(Array(text.utf8), format: .csv)
        } throws: { error in
            let problems = (error as? AssetFileError)?.problems ?? []
            return problems.contains { $0.hasPrefix("line 2: filename") }
                && problems.contains { $0.contains("line 3: kind must be checkpoint or lora") }
                && problems.contains { $0.contains("line 4: size_bytes") }
                && problems.contains { $0.contains("line 4: sha256") }
                && problems.contains { $0.contains("line 4: source_url") }
        }
    }

    @Test func json_withUnknownKeyOrWrongType_isRefusedWithThePlace() {
        let text = #"[{"filename": "a.safetensors", "kind": "lora", "size_bytes": "10", "sha256": "\#(sha)", "source_url": "https://h/a", "colour": "red"}]"#
        #expect {
            try AssetFileParser.parse(Array(text.utf8), format: .json)
        } throws: { error in
            let problems = (error as? AssetFileError)?.problems ?? []
            return problems.contains { $0.contains(#"assets[0]: unknown key "colour""#) }
                && problems.contains { $0.contains("assets[0].size_bytes must be a whole number, not string") }
        }
    }

    @Test func sameFilenameTwiceWithDifferentValues_isRefused() {
        let text = """
            filename,kind,size_bytes,sha256,source_url
            a.safetensors,lora,10,\(sha),https://h/a
            a.safetensors,lora,11,\(sha),https://h/a
            """
        #expect(throws: AssetFileError.self) { try AssetFileParser.parse(Array(text.utf8), format: .csv) }
    }

    @Test func formatDetection_usesTheExtensionThenTheFirstCharacter() {
        #expect(AssetFileParser.Format.detect(path: "x.CSV", contents: Array("[".utf8)) == .csv)
        #expect(AssetFileParser.Format.detect(path: "-", contents: Array("  [{}]".utf8)) == .json)
        #expect(AssetFileParser.Format.detect(path: "-", contents: Array("filename,kind".utf8)) == .csv)
    }
}

@Suite("assets import: plan against the registry")
struct AssetImportPlanTests {
    func asset(_ name: String, size: Int64 = 10, sha: String = String(repeating: "a", count: 64), url: String = "https://h/x", kind: AssetKind = .lora) -> Asset {
        Asset(filename: name, kind: kind, sizeBytes: size, sha256: sha, sourceURL: url)
    }

    @Test func reimport_isUnchanged_newURLIsAnUpdate_otherBytesAreAConflict() {
        let registered = ["same": asset("same"), "moved": asset("moved"), "resized": asset("resized"), "rekinded": asset("rekinded")]
        let plan = AssetImportPlan(
            incoming: [asset("same"), asset("moved", url: "https://mirror/x"), asset("resized", size: 11), asset("rekinded", kind: .checkpoint), asset("new")],
            registered: registered)
        #expect(plan.unchanged.map(\.filename) == ["same"])
        #expect(plan.sourceURLUpdates.map(\.filename) == ["moved"])
        #expect(plan.inserts.map(\.filename) == ["new"])
        #expect(plan.conflicts.map(\.filename) == ["resized", "rekinded"])
        #expect(plan.conflicts[0].differences == ["size_bytes 10 → 11"])
    }
}
