import AMQPClient
import Foundation
import PostgresClient
import SpotqCore
import SpotqBundle
import ZIPFoundation
import SpotqSynthetic
@testable import ServerTestSupport

// The bad inputs of BadInputChaosTests, one corpus per door, each with the words its
// refusal must contain. `round` keeps names apart when a corpus is offered again.

// MARK: SQL

/// One INSERT as a website writes it (README, "Enqueue by SQL"): values bound as text, JSON
/// columns cast by the database. A nil column is left out of the statement.
struct WebsiteRow: Sendable {
    var requestID: String
    var checkpoint: String? = EnqueueFixture.checkpoint
    var loras: String? = "[]"
    var prompt: String?
    var workflow: String?
    var status: String?
    var priority: Int?
    /// `prompt.positive` of a valid row, to check that nothing overwrote it.
    var positive: String

    static func valid(_ id: String, lora: Bool = false, positive: String? = nil) -> WebsiteRow {
        let text = positive ?? "a valid image \(id)"
        let request = TextToImageRequest(
            requestID: id, checkpoint: EnqueueFixture.checkpoint, loras: lora ? [LoraUse(file: EnqueueFixture.lora, strength: 0.5)] : [], positive: text)
        return WebsiteRow(
            requestID: id,
            loras: json(.array(request.loras.map { ["file": .string($0.file), "strength": .number($0.strength)] })),
            prompt: json(["positive": .string(text), "seed": 7]), workflow: json(request.workflow()), positive: text)
    }

    static func json(_ value: JSONValue) -> String { String(decoding: value.serialized(), as: UTF8.self) }

    func insert(onConflictDoNothing: Bool = false) -> PostgresQuery {
        let values: [(String, (any PostgresEncodable)?)] = [
            ("request_id", requestID), ("checkpoint", checkpoint), ("loras", loras), ("prompt", prompt),
            ("workflow", workflow), ("status", status), ("priority", priority),
        ]
        let given = values.compactMap { column, value in value.map { (column, $0) } }
        let placeholders = given.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
        return PostgresQuery(
            sql: "INSERT INTO image_generation_queue (\(given.map(\.0).joined(separator: ", "))) VALUES (\(placeholders))"
                + (onConflictDoNothing ? " ON CONFLICT (request_id) DO NOTHING" : "") + " RETURNING id",
            parameters: given.map(\.1))
    }

    /// Expects a refusal mentioning the text; nil: `ON CONFLICT DO NOTHING` inserts nothing.
    static func corpus(round r: Int) -> [BadInput<WebsiteRow>] {
        func row(_ name: String, _ change: (inout WebsiteRow) -> Void) -> WebsiteRow {
            var row = valid("sql-bad-\(r)-\(name)")
            change(&row)
            return row
        }
        var repeated = valid("sql-\(r)-1", positive: "this must not replace the first prompt")
        repeated.positive = valid("sql-\(r)-1").positive
        return [
            BadInput("malformed prompt JSON", row("json") { $0.prompt = #"{"positive": "unterminated"# }, "invalid input syntax for type json"),
            BadInput("an unknown checkpoint", row("ckpt") { $0.checkpoint = "nope.safetensors" }, #"unknown checkpoint "nope.safetensors""#),
            BadInput("a LoRA as the checkpoint", row("lora-ckpt") { $0.checkpoint = EnqueueFixture.lora }, "is a lora, not a checkpoint"),
            BadInput("an unknown LoRA", row("lora") { $0.loras = #"[{"file": "ghost.safetensors", "strength": 1}]"# }, #"unknown lora "ghost.safetensors""#),
            BadInput("a LoRA strength as text", row("strength") { $0.loras = #"[{"file": "style.safetensors", "strength": "0.8"}]"# },
                     "loras[0].strength must be a number, not string"),
            BadInput("a workflow in UI format (the wrong format version)", row("ui") { $0.workflow = #"{"nodes": [], "links": [], "version": 0.4}"# },
                     "UI format, not API format"),
            BadInput("a workflow loading another checkpoint", row("other") {
                $0.workflow = json(TextToImageRequest(requestID: "", checkpoint: "other.safetensors", positive: "x").workflow())
            }, #"loads checkpoint "other.safetensors""#),
            BadInput("no workflow column", row("no-workflow") { $0.workflow = nil }, #"null value in column "workflow""#),
            BadInput("a prompt without positive", row("no-positive") { $0.prompt = #"{"negative": "blurry"}"# }, "prompt.positive is missing"),
            BadInput("a prompt that is a string", row("prompt-string") { $0.prompt = #""a cat""# }, "prompt must be a JSON object, not string"),
            BadInput("an oversize prompt", row("huge") { $0.prompt = json(["positive": .string(String(repeating: "big ", count: 20_000))]) },
                     "prompt_is_at_most_64_kib"),
            BadInput("an oversize workflow (a broker would refuse its work message)", row("huge-workflow") { row in
                row.workflow = row.workflow.map { #"{"99": {"class_type": "Note", "inputs": {"text": ""# + String(repeating: "x", count: 1_100_000) + #""}}, "# + $0.dropFirst() }
            }, "workflow_is_at_most_1_mib"),
            BadInput("inserted as done", row("done") { $0.status = "done" }, #"a new queue item must be pending, not "done""#),
            BadInput("a priority out of range", row("priority") { $0.priority = 5_000 }, "priority_between_minus_1000_and_1000"),
            BadInput("a NUL character in the prompt", row("nul") { $0.prompt = #"{"positive": "a\u0000b"}"# }, "unsupported Unicode escape sequence"),
            BadInput("a line break in request_id", row("x") { $0.requestID = "sql-bad-\(r)-line\nbreak" }, "request_id_has_no_control_characters"),
            BadInput("an empty request_id", row("x") { $0.requestID = "" }, "request_id_is_1_to_200_chars"),
            BadInput("a request_id of 201 characters", row("x") { $0.requestID = String(repeating: "r", count: 201) }, "request_id_is_1_to_200_chars"),
            BadInput("a seed beyond 64 bits", row("seed") { $0.prompt = #"{"positive": "x", "seed": 18446744073709551616}"# },
                     "prompt.seed must be a whole number between 0 and 18446744073709551615"),
            BadInput("a repeated request_id", valid("sql-\(r)-0", positive: "this must not replace the first prompt"), "request_id_must_be_unique"),
            BadInput("a repeated request_id with ON CONFLICT DO NOTHING", repeated, nil),
        ]
    }
}

// MARK: AMQP

/// A message for `spotq.enqueue`: body and properties.
struct AMQPInput: Sendable {
    static let duplicate = "duplicate"

    var body: [UInt8]
    var properties = AMQPMessageProperties(contentType: EnqueueMessage.contentType)

    static func properties(correlation: String, replyTo: String) -> AMQPMessageProperties {
        AMQPMessageProperties(contentType: EnqueueMessage.contentType, correlationID: correlation, replyTo: replyTo)
    }

    /// For a consumer whose size cap is 65,536 bytes. Expects a dead letter whose reason
    /// mentions the text, or ``duplicate``: answered as a duplicate, no second row.
    static func corpus(_ fixture: EnqueueFixture, round r: Int) -> [BadInput<AMQPInput>] {
        let id = "amqp-bad-\(r)"
        let valid = String(decoding: fixture.request(id), as: UTF8.self)
        func text(_ body: String) -> AMQPInput { AMQPInput(body: Array(body.utf8)) }
        func edited(_ old: String, _ new: String) -> AMQPInput {
            let range = valid.range(of: old)!
            return text(valid.replacingCharacters(in: range, with: new))
        }
        return [
            BadInput("not JSON", text("this is not json"), "the body is not valid JSON"),
            BadInput("a JSON array", text("[1, 2, 3]"), "the body must be a JSON object, not array"),
            BadInput("a JSON number", text("42"), "the body must be a JSON object, not number"),
            BadInput("truncated JSON", text(String(valid.prefix(valid.count / 2))), "the body is not valid JSON"),
            BadInput("a wrong content type", AMQPInput(body: Array(valid.utf8), properties: AMQPMessageProperties(contentType: "text/plain")),
                     #"content_type "text/plain" is not application/json"#),
            BadInput("a compressed encoding", AMQPInput(body: Array(valid.utf8), properties: AMQPMessageProperties(contentType: "application/json", contentEncoding: "gzip")),
                     #"content_encoding "gzip" is not supported"#),
            BadInput("an unknown checkpoint", AMQPInput(body: fixture.request(id + "-ckpt", checkpoint: "nope.safetensors")), #"unknown checkpoint "nope.safetensors""#),
            BadInput("an unknown LoRA", AMQPInput(body: fixture.request(id + "-lora", loras: [LoraUse(file: "ghost.safetensors", strength: 1)])),
                     #"unknown lora "ghost.safetensors""#),
            BadInput("an oversize body", edited(#""positive":"#, #""padding":"\#(String(repeating: "x", count: 70_000))","positive":"#), "the limit is 65536"),
            BadInput("deep nesting", edited(#""positive":"#, #""nested":\#(String(repeating: "[", count: 10_000))\#(String(repeating: "]", count: 10_000)),"positive":"#),
                     "the body is not valid JSON"),
            BadInput("a number too large for any type", edited(#""priority":0"#, #""priority":1e400"#), "the body is not valid JSON"),
            BadInput("a priority beyond 32 bits", edited(#""priority":0"#, #""priority":99999999999"#), #""priority" must be a whole number"#),
            BadInput("a seed beyond 64 bits", edited(#""seed":0"#, #""seed":18446744073709551616"#), "prompt.seed must be a whole number between 0 and"),
            BadInput("no request_id", edited(#""request_id":"\#(id)","#, ""), #""request_id" is missing"#),
            BadInput("an unknown version", edited(#""version":1"#, #""version":2"#), "unknown version 2"),
            BadInput("a misspelt field", edited(#""prompt":"#, #""propmt":"#), #"unknown field "propmt""#),
            BadInput("invalid UTF-8", AMQPInput(body: invalidUTF8(valid)), "Invalid UTF-8 sequence"),
            BadInput("a NUL escape", edited("a test image", #"a test \u0000 image"#), "unsupported Unicode escape sequence"),
            BadInput("a request_id already queued", AMQPInput(body: fixture.request("amqp-\(r)-0")), duplicate),
        ]
    }
}

// MARK: HTTP

/// One result upload: where it goes, with which token and content type, and the status a
/// bad one must get.
struct UploadInput: Sendable {
    var body: Data
    var batch: Int64
    var token: String?
    var contentType: String? = "application/zip"
    var status: Int

    /// For an ingest whose limits are `limits` (a small body cap and file count).
    static func corpus(_ f: IngestFixture, limits: IngestLimits, escapeName: String, terminatedPodToken: String) throws -> [BadInput<UploadInput>] {
        let item = f.itemsA[2]
        let good = try f.bundle(item, batch: f.batchA)
        let png = Data(PNGEncoder.encode(width: 4, height: 4) { _, _ in (9, 9, 9) })
        func upload(_ body: Data, _ status: Int, token: String?? = .none, contentType: String? = "application/zip") -> UploadInput {
            UploadInput(body: body, batch: f.batchA, token: token ?? f.token(f.batchA), contentType: contentType, status: status)
        }
        func bundle(_ files: [(String, Data)], requestID: String? = nil, declaredBytes: Int64? = nil) throws -> Data {
            let rows = files.map { BundleFileRow(filename: $0.0, bytes: declaredBytes ?? Int64($0.1.count), sha256: BundleWriterTestSupport.sha256($0.1), contentType: "image/png") }
            return try BundleWriter.zip(try jsonEntries(item: item, requestID: requestID, batch: f.batchA, rows: rows) + files)
        }
        var symlink = try jsonEntries(item: item, requestID: nil, batch: f.batchA, rows: [BundleFileRow(
            filename: "a.png", bytes: 11, sha256: BundleWriterTestSupport.sha256(Data("/etc/passwd".utf8)), contentType: "image/png")])
        symlink.append(("a.png", Data("/etc/passwd".utf8)))
        let noise = Data((0..<(limits.maxBodyBytes + 4_096)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
        return [
            BadInput("no token", upload(good, 401, token: .some(nil)), "an Authorization: Bearer"),
            BadInput("a made-up token", upload(good, 403, token: "sqb1_nonsense"), "not valid for batch"),
            BadInput("another batch's token", upload(good, 403, token: f.token(f.batchB)), "not valid for batch \(f.batchA)"),
            BadInput("a terminated pod's own token", upload(good, 401, token: terminatedPodToken), "revoked when the pod was terminated"),
            BadInput("a batch that does not exist", UploadInput(body: good, batch: 999_999, token: f.token(f.batchA), status: 403), "not valid for batch 999999"),
            BadInput("a body over the size cap", upload(noise, 413), "larger than \(limits.maxBodyBytes) bytes"),
            BadInput("zip-slip ../", upload(try bundle([("../" + escapeName, png)]), 400), #"contains "..""#),
            BadInput("an absolute path", upload(try bundle([("/tmp/" + escapeName, png)]), 400), "has an absolute path"),
            BadInput("a backslash path", upload(try bundle([("..\\" + escapeName, png)]), 400), #"contains "..""#),
            BadInput("a backslash folder", upload(try bundle([("sub\\" + escapeName, png)]), 400), "is in a folder"),
            BadInput("a symbolic link", upload(try zipWithSymlink(symlink), 400), "symbolic link"),
            BadInput("a zip bomb", upload(try bundle([("bomb.png", Data(count: 16 << 20))]), 413), "declares 16777216 bytes expanded"),
            BadInput("a zip bomb hiding its size", upload(try declaring(1_000, try bundle([("bomb.png", Data(count: 16 << 20))], declaredBytes: 1_000)), 413), "a zip bomb?"),
            BadInput("images each under the cap, over the expanded total", upload(try bundle((0..<3).map { ("\($0).png", Data(count: limits.maxExpandedBytes / 2)) }), 413),
                     "SPOTQ_UPLOAD_MAX_EXPANDED_BYTES"),
            BadInput("a huge declared size", upload(try declaring(0xFFFF_FFF0, try bundle([("x.png", png)])), 413), "declares 4294967280 bytes expanded"),
            BadInput("too many images", upload(try bundle((0...limits.maxFiles).map { ("\($0).png", png) }), 413), "more than \(limits.maxFiles) images"),
            BadInput("a wrong content type", upload(good, 415, contentType: "text/plain"), "application/zip"),
            BadInput("not a zip", upload(noise.prefix(2_048), 400), "not a readable zip"),
            BadInput("an empty body", upload(Data(), 400), "not a readable zip"),
            BadInput("a truncated zip", upload(good.prefix(good.count / 2), 400), "truncated or corrupt"),
            BadInput("text claiming to be a PNG", upload(try bundle([("x.png", Data("this is not a png".utf8))]), 415), "is not a PNG, JPEG or WebP image"),
            BadInput("an item of another batch", UploadInput(body: try f.bundle(item, batch: f.batchB), batch: f.batchB, token: f.token(f.batchB), status: 403),
                     "item \(item.id) is not in batch \(f.batchB)"),
            BadInput("another item's request_id", upload(try bundle([("x.png", png)], requestID: "someone-else"), 400), "does not match item \(item.id)"),
        ]
    }

    static func jsonEntries(item: (id: Int64, requestID: String), requestID: String?, batch: Int64, rows: [BundleFileRow]) throws -> [(String, Data)] {
        [
            (BundleEntryName.queueRow, try JSONEncoder().encode(BundleQueueRow(id: item.id, requestID: requestID ?? item.requestID, batchID: batch))),
            (BundleEntryName.fileRows, try JSONEncoder().encode(rows)),
        ]
    }

    /// The entries as files, except the last, which becomes a symbolic link to its contents.
    static func zipWithSymlink(_ entries: [(String, Data)]) throws -> Data {
        let archive = try Archive(data: Data(), accessMode: .create)
        for (index, (name, data)) in entries.enumerated() {
            try archive.addEntry(with: name, type: index == entries.count - 1 ? .symlink : .file, uncompressedSize: Int64(data.count)) { position, size in
                data.subdata(in: Int(position) ..< Int(position) + size)
            }
        }
        return archive.data!
    }

    /// `zip` with the last entry's expanded size (local header and central directory) set to `size`.
    static func declaring(_ size: UInt32, _ zip: Data) throws -> Data {
        var bytes = [UInt8](zip)
        func lastOffset(of signature: [UInt8]) -> Int? {
            stride(from: bytes.count - 4, through: 0, by: -1).first { Array(bytes[$0 ..< $0 + 4]) == signature }
        }
        func put(_ value: UInt32, at offset: Int) {
            for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
        }
        guard let central = lastOffset(of: [0x50, 0x4B, 0x01, 0x02]), let local = lastOffset(of: [0x50, 0x4B, 0x03, 0x04]) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        put(size, at: central + 24)
        put(size, at: local + 22)
        return Data(bytes)
    }
}

// MARK: CLI

/// Input files for `spotq enqueue` and `spotq assets import`.
enum CLIInput {
    static let duplicate = "duplicate"

    /// One line of a JSONL file: a valid request (its id) or a bad line and its refusal.
    struct Line {
        var line: [UInt8]
        var refusal: String?
        var validID: String?
    }

    /// Good lines with bad ones between them; the last one repeats the first request.
    static func enqueueLines(_ fixture: EnqueueFixture, round r: Int) -> [Line] {
        let id = "cli-bad-\(r)"
        let valid = String(decoding: fixture.request(id), as: UTF8.self)
        func bad(_ text: String, _ refusal: String) -> Line { Line(line: Array(text.utf8), refusal: refusal) }
        let badLines = [
            bad("{broken", "the body is not valid JSON"),
            bad("[1, 2]", "the body must be a JSON object, not array"),
            Line(line: fixture.request(id + "-ckpt", checkpoint: "gone.safetensors"), refusal: #"unknown checkpoint "gone.safetensors""#),
            bad(valid.replacingOccurrences(of: #""request_id":"\#(id)","#, with: ""), #""request_id" is missing"#),
            bad(valid.replacingOccurrences(of: #""prompt":"#, with: #""propmt":"#), #"unknown field "propmt""#),
            bad(valid.replacingOccurrences(of: #""positive":"#, with: #""padding":"\#(String(repeating: "x", count: 1 << 20))","positive":"#), "the limit is 1048576"),
            Line(line: invalidUTF8(valid), refusal: "Invalid UTF-8 sequence"),
            bad(valid.replacingOccurrences(of: "a test image", with: #"a test \u0000 image"#), "unsupported Unicode escape sequence"),
        ]
        var lines: [Line] = []
        for (index, line) in badLines.enumerated() {
            let goodID = "cli-\(r)-\(index)"
            var good = Line(line: fixture.request(goodID), validID: goodID)
            if index == 0 { good.line = [0xEF, 0xBB, 0xBF] + good.line }
            lines += [good, line]
        }
        lines.append(Line(line: fixture.request("cli-\(r)-0"), refusal: duplicate))
        return lines
    }

    /// Files neither command can read, and what each says.
    static func unreadable(_ folder: URL, round r: Int) throws -> [(name: String, path: String, enqueue: String, assets: String)] {
        let missing = folder.appendingPathComponent("missing-\(r).jsonl").path
        let directory = folder.appendingPathComponent("a-directory-\(r)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let garbage = folder.appendingPathComponent("garbage-\(r).bin")
        try Data((0..<4_096).map { UInt8(truncatingIfNeeded: $0 &* 7_919 >> 3) }).write(to: garbage)
        return [
            ("a missing file", missing, "no such file", "no such file"),
            ("a directory", directory.path, "it is a directory", "it is a directory"),
            ("binary garbage", garbage.path, "the body is not valid JSON", "the file is not UTF-8 text"),
        ]
    }

    static let sha = String(repeating: "a", count: 64)
    static let header = "filename,kind,size_bytes,sha256,source_url"
    static let cleanAssetCSV = "\(header)\nclean_base.safetensors,checkpoint,1000,\(sha),https://127.0.0.1/a\nclean_style.safetensors,lora,10,\(sha),https://127.0.0.1/b\n"

    /// Asset lists with one problem each, good entries around it: the whole file is refused.
    static func assetFiles(_ folder: URL, round r: Int) throws -> [BadInput<String>] {
        let good = "good_\(r).safetensors,checkpoint,1000,\(sha),https://127.0.0.1/good"
        let goodJSON = #"{"filename": "good_\#(r).safetensors", "kind": "checkpoint", "size_bytes": 1000, "sha256": "\#(sha)", "source_url": "https://127.0.0.1/good"}"#
        let files: [(name: String, file: String, contents: String, refusal: String)] = [
            ("not JSON", "broken.json", "{oops", "the file is not valid JSON"),
            ("JSON of the wrong shape", "shape.json", #"{"files": []}"#, "expected a JSON array of assets"),
            ("a bad JSON entry among good ones", "entry.json", "[\(goodJSON), \(goodJSON.replacingOccurrences(of: "checkpoint", with: "model"))]",
             "assets[1]: kind must be checkpoint or lora"),
            ("a bad CSV row among good ones", "row.csv", "\(header)\n\(good)\nbad.safetensors,lora,10,xyz,https://127.0.0.1/x\n", "line 3: sha256 must be 64 hex digits"),
            ("a CSV header without a column", "header.csv", "filename,kind,size_bytes,sha256\n\(good)\n", "the header lacks source_url"),
            ("a CSV row with too few fields", "fields.csv", "\(header)\n\(good)\nshort.safetensors,lora\n", "line 3: 2 fields, expected 5"),
            ("a CSV quote left open", "quote.csv", "\(header)\n\"open.safetensors,lora,10,\(sha),https://127.0.0.1/x\n", "line 2: a quoted field is never closed"),
            ("a NUL in a source URL", "nul.csv", "\(header)\n\(good)\nnul.safetensors,lora,10,\(sha),https://127.0.0.1/a\u{0}b\n", "line 3: source_url contains control characters"),
            ("one file name with two sizes", "twice.csv", "\(header)\n\(good)\n\(good.replacingOccurrences(of: ",1000,", with: ",2000,"))\n", "appears twice with different values"),
            ("an empty CSV file", "empty.csv", "", "the file is empty"),
            ("a huge file name", "long.csv", "\(header)\n\(String(repeating: "n", count: 1 << 20)).safetensors,lora,10,\(sha),https://127.0.0.1/x\n",
             "filename is longer than 255 bytes"),
        ]
        return try files.map { entry in
            let url = folder.appendingPathComponent("\(r)-\(entry.file)")
            try Data(entry.contents.utf8).write(to: url)
            return BadInput(entry.name, url.path, entry.refusal)
        }
    }
}

/// `json` with its first "a test image" followed by bytes that are not UTF-8 (0xC3 0x28).
func invalidUTF8(_ json: String) -> [UInt8] {
    let marked = Array(json.replacingOccurrences(of: "a test image", with: "a test image #").utf8)
    let marker = marked.firstIndex(of: UInt8(ascii: "#"))!
    return Array(marked[..<marker]) + [0xC3, 0x28] + Array(marked[(marker + 1)...])
}

extension CLIInput {
    /// True when `spotq enqueue`'s report gives a reason mentioning `fragment` with `line`
    /// among its places ("    1 × <reason> (line 4, 9)").
    static func reportNames(_ output: String, _ fragment: String, line: Int) -> Bool {
        output.split(separator: "\n").contains { row in
            guard row.contains(fragment), let open = row.range(of: "(line ", options: .backwards) else { return false }
            let places = row[open.upperBound...].prefix { $0 != ")" }.split(separator: ",")
            return places.contains { $0.trimmingCharacters(in: .whitespaces) == String(line) }
        }
    }
}
