import AMQPClient
import CurlClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqBundle
import SpotqStore
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

/// Issue 9's bad-input corpus: at each door (SQL insert, AMQP message, HTTP upload, CLI input
/// file) bad inputs are offered between valid ones through the real code. Every bad one must
/// be refused with a reason that says what is wrong; every valid one must be kept, once.
@Suite("chaos: bad inputs at every door")
struct BadInputChaosTests {
    /// How many times each corpus is offered (with fresh valid inputs between).
    static let rounds = ChaosScale.pick(short: 1, full: 10)

    // MARK: SQL

    @Test func sqlInserts_badRowsAreRefusedByTheDatabase_andEveryValidRowIsPlannedOnce() async throws {
        try await EnqueueFixture.with { fixture in
            var tally = RefusalTally()
            var valid: [WebsiteRow] = []
            for round in 0..<Self.rounds {
                for (index, bad) in WebsiteRow.corpus(round: round).enumerated() {
                    let good = WebsiteRow.valid("sql-\(round)-\(index)", lora: index % 3 == 0)
                    #expect(try await fixture.postgres.query(good.insert()).count == 1, "valid row \(good.requestID)")
                    valid.append(good)
                    do {
                        let inserted = try await fixture.postgres.query(bad.input.insert(onConflictDoNothing: bad.refusal == nil))
                        if let refusal = bad.refusal {
                            Issue.record("\(bad.name): inserted \(inserted.count) rows; expected a refusal mentioning \(refusal)")
                        } else {
                            tally.expect(bad.name, inserted.isEmpty ? "nothing inserted" : "inserted", mentions: "nothing inserted")
                        }
                    } catch let error as PostgresError {
                        #expect(error.sqlState.map { $0.hasPrefix("22") || $0.hasPrefix("23") || $0.hasPrefix("54") } == true, "\(bad.name): \(error)")
                        tally.expect(bad.name, QueueStore.reason(error), mentions: bad.refusal ?? "no error")
                    }
                }
                // Hostile but valid: SQL in the values, and a prompt of unusual characters.
                for hostile in [WebsiteRow.valid("x'); DELETE FROM image_generation_queue; --\(round)"),
                                WebsiteRow.valid("unicode-\(round)", positive: String(repeating: "👩‍👩‍👧‍👦 ﷽ Z̷͎̈ \u{202E}rtl\u{200B} ", count: 400))] {
                    #expect(try await fixture.postgres.query(hostile.insert()).count == 1, "hostile but valid row \(hostile.requestID)")
                    valid.append(hostile)
                }
            }
            let demand = try await QueueStore(client: fixture.postgres).pendingDemand()
            #expect(demand.items == valid.count)
            let (batches, _, _) = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: String(repeating: "s", count: 40))
            #expect(batches.reduce(0) { $0 + $1.planned.generationOrder.count } == valid.count)
            #expect(try await fixture.requestIDs() == valid.map(\.requestID).sorted())
            // The duplicates changed nothing: every kept row still has its first prompt.
            let prompts = try await fixture.postgres.query("SELECT request_id, prompt ->> 'positive' FROM image_generation_queue")
            let stored = Dictionary(uniqueKeysWithValues: try prompts.map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) })
            #expect(valid.allSatisfy { stored[$0.requestID] == $0.positive })
            let planned = try await fixture.postgres.count("SELECT count(*) FROM image_generation_queue WHERE status = 'planned' AND batch_id IS NOT NULL")
            tally.record(
                "bad input: SQL inserts", enqueued: valid.count, lost: valid.count - planned,
                duplicated: try await fixture.postgres.count("SELECT count(*) - count(DISTINCT request_id) FROM image_generation_queue"),
                note: "refused = the INSERT failed naming its rule (or ON CONFLICT inserted nothing); the valid rows were planned into \(batches.count) batch(es)")
        }
    }

    // MARK: SQL, as the website's role

    /// What an SQL injection in the website could try with its database login (a member of
    /// spotq_website): rewrite a batch's token hash, point an asset at another file, mark
    /// work done, delete it, plant result rows. Each is refused by PostgreSQL; the website's
    /// valid inserts between them are all kept.
    @Test func theWebsitesDatabaseRole_cannotWriteWhereItMustNot_andItsValidRowsAreKept() async throws {
        try await EnqueueFixture.with { fixture in
            _ = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: String(repeating: "s", count: 40))
            let hostile: [(String, String)] = [
                ("rewrite a batch's upload token hash", "UPDATE batches SET upload_token_hash = repeat('a', 64)"),
                ("plan a batch of its own", "INSERT INTO batches (status, assets, item_count, payload_bytes) VALUES ('planned', '[]', 0, 0)"),
                ("point an asset at another file", "UPDATE assets SET source_url = 'https://attacker.example/x.safetensors', sha256 = repeat('b', 64)"),
                ("register an asset", "INSERT INTO assets (filename, kind, size_bytes, sha256, source_url) VALUES ('x.safetensors', 'checkpoint', 1, repeat('c', 64), 'https://attacker.example/x')"),
                ("mark its requests done", "UPDATE image_generation_queue SET status = 'done'"),
                ("delete the queue", "DELETE FROM image_generation_queue"),
                ("empty the queue", "TRUNCATE image_generation_queue"),
                ("plant a result row", "INSERT INTO image_generation_files (item_id, filename, bytes, sha256, content_type, storage_path) SELECT id, 'x.png', 1, repeat('d', 64), 'image/png', 'x' FROM image_generation_queue LIMIT 1"),
                ("read the pods' token hashes", "SELECT upload_token_hash FROM pods"),
                ("read the batches' manifests", "SELECT manifest FROM batches"),
                ("read the workflows of every request", "SELECT workflow FROM image_generation_queue"),
                ("create a table", "CREATE TABLE spotq_planted (x int)"),
            ]
            try await TemporaryLogin.with(memberOf: "spotq_website", on: fixture.database) { login in
                let website = PostgresClient(configuration: login, logger: testLogger)
                var tally = RefusalTally()
                var valid: [String] = []
                for round in 0..<Self.rounds {
                    for (index, (name, statement)) in hostile.enumerated() {
                        let good = WebsiteRow.valid("role-\(round)-\(index)", lora: index % 2 == 0)
                        #expect(try await website.query(good.insert()).count == 1, "valid row \(good.requestID)")
                        valid.append(good.requestID)
                        do {
                            try await website.withConnection { try await $0.runScript(statement) }
                            Issue.record("\(name): the website's role was allowed: \(statement)")
                        } catch let error as PostgresError {
                            #expect(error.sqlState == "42501", "\(name): \(error)")
                            tally.expect(name, QueueStore.reason(error), mentions: "permission denied")
                        }
                    }
                }
                await website.shutdown()
                let kept = try await fixture.postgres.count("SELECT count(*) FROM image_generation_queue WHERE request_id LIKE 'role-%' AND status = 'pending'")
                #expect(kept == valid.count)
                #expect(try await fixture.postgres.count("SELECT count(*) FROM assets WHERE source_url LIKE '%attacker%'") == 0)
                #expect(try await fixture.postgres.count("SELECT count(*) FROM batches WHERE upload_token_hash = repeat('a', 64)") == 0)
                tally.record(
                    "bad input: the website's database role", enqueued: valid.count, lost: valid.count - kept,
                    duplicated: try await fixture.postgres.count("SELECT count(*) - count(DISTINCT request_id) FROM image_generation_queue"),
                    note: "refused = PostgreSQL's permission denied (42501) for a login in spotq_website; batches, assets and results untouched")
            }
        }
    }

    // MARK: AMQP

    @Test func amqpMessages_badOnesAreDeadLetteredAndAnsweredWithAReason_andEveryValidOneIsInsertedOnce() async throws {
        try await EnqueueFixture.with { fixture in
            let replyChannel = try await fixture.connection.openChannel()
            let replyQueue = try await replyChannel.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
            let replies = try await replyChannel.consume(queue: replyQueue)
            var offered: [(id: String, refusal: String?)] = []
            var validIDs: [String] = []
            let answers = try await fixture.withConsumer({ $0.maxMessageBytes = 65_536 }) { () -> [String: EnqueueReply] in
                for round in 0..<Self.rounds {
                    for (index, bad) in AMQPInput.corpus(fixture, round: round).enumerated() {
                        let goodID = "amqp-\(round)-\(index)"
                        let hostile = index % 4 == 1 ? "'; DROP TABLE image_generation_queue; --" : ""
                        try await fixture.publish(fixture.request(goodID + hostile), properties: AMQPInput.properties(correlation: goodID, replyTo: replyQueue))
                        offered.append((goodID, nil))
                        validIDs.append(goodID + hostile)
                        var properties = bad.input.properties
                        properties.correlationID = "bad-\(round)-\(index)"
                        properties.replyTo = replyQueue
                        try await fixture.publish(bad.input.body, properties: properties)
                        offered.append((properties.correlationID!, bad.refusal))
                    }
                }
                let total = offered.count
                return try await withTimeout(.seconds(60), "\(total) answers") {
                    var answers: [String: EnqueueReply] = [:]
                    for try await delivery in replies {
                        try await delivery.ack()
                        answers[delivery.properties.correlationID ?? "?"] = try JSONDecoder().decode(EnqueueReply.self, from: Data(delivery.body))
                        if answers.count == total { break }
                    }
                    return answers
                }
            }
            try? await replyChannel.close()

            var tally = RefusalTally()
            var rejected = 0
            for (id, refusal) in offered {
                let answer = answers[id]
                guard let refusal else {
                    #expect(answer?.outcome == "accepted", "\(id): \(String(describing: answer))")
                    continue
                }
                if refusal == AMQPInput.duplicate {
                    tally.expect(id, answer?.outcome ?? "no answer", mentions: "duplicate")
                } else {
                    rejected += 1
                    #expect(answer?.outcome == "rejected", "\(id): \(String(describing: answer))")
                    tally.expect(id, answer?.reason ?? "no reason", mentions: refusal)
                }
            }
            // The same reasons are on the dead letters, one per refused message, none twice.
            let dead = try await fixture.deadLetters(rejected)
            #expect(Set(dead.compactMap(\.properties.correlationID)).count == rejected)
            for letter in dead {
                let expected = offered.first { $0.id == letter.properties.correlationID }?.refusal ?? "an offered message"
                #expect(letter.reason?.contains(expected) == true, "dead letter \(letter.properties.correlationID ?? "?"): \(letter.reason ?? "no reason")")
            }
            #expect(try await fixture.ready(fixture.deadQueue) == 0)
            #expect(try await fixture.ready(fixture.queue) == 0)
            let stored = try await fixture.requestIDs()
            #expect(stored == validIDs.sorted())
            tally.record(
                "bad input: AMQP messages", enqueued: stored.count, deadLettered: dead.count,
                lost: Set(validIDs).subtracting(stored).count, duplicated: stored.count - Set(stored).count,
                note: "refused = dead-lettered with x-spotq-reason and answered \"rejected\" (a repeated request_id: answered \"duplicate\", no row)")
        }
    }

    // MARK: HTTP

    @Test func httpUploads_badOnesAreRefusedWithTheirStatusAndReason_andEveryValidBundleIsStoredOnce() async throws {
        let limits = {
            var limits = IngestLimits()
            limits.maxBodyBytes = 256 << 10
            limits.maxFileBytes = 1 << 20
            limits.maxExpandedBytes = 3 << 19
            limits.maxFiles = 4
            return limits
        }()
        try await IngestFixture.with(limits: limits) { f in
            let escapeName = "spotq-escape-\(UUID().uuidString).png"
            // A pod's own token after the pod was terminated (a stolen token outliving its pod).
            let podToken = BatchToken.makePodToken()
            let pods = PodStore(client: f.postgres)
            let pod = try await pods.insertRequested(PodStore.Request(
                batchID: f.batchA, provider: "devcloud", name: "spotq-b\(f.batchA)-gone", gpuType: "NVIDIA RTX A4000", gpuCount: 1, interruptible: false,
                bidUSDPerGPUHour: nil, volumeGB: 12, containerDiskGB: 1, storageUSDPerGBMonth: 0.1), uploadTokenHash: BatchToken.hash(podToken))
            try await pods.terminated(pod, reason: "chaos: a terminated pod's token")
            let corpus = try UploadInput.corpus(f, limits: limits, escapeName: escapeName, terminatedPodToken: podToken)
            var tally = RefusalTally()
            // The corpus aims at itemsA[2], so that one is stored only after it: the content
            // checks are made only for an item not stored yet (a stored one answers 200 unread).
            let target = f.itemsA[2]
            var valid = (f.itemsA.filter { $0.id != target.id }.map { ($0, f.batchA) } + f.itemsB.map { ($0, f.batchB) }).makeIterator()
            var stored: [Int64] = []
            for round in 0..<Self.rounds {
                for bad in corpus {
                    if round == 0, let (item, batch) = valid.next() {
                        let answer = try await f.post(try f.bundle(item, batch: batch), batch: batch, token: f.token(batch))
                        #expect(answer.status == 201, "valid upload of item \(item.id): \(answer.text)")
                        if answer.status == 201 { stored.append(item.id) }
                    }
                    let answer = try await f.post(bad.input.body, batch: bad.input.batch, token: bad.input.token, contentType: bad.input.contentType)
                    #expect(answer.status == bad.input.status, "\(bad.name): \(answer.status) \(answer.text)")
                    let refusal = (try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])?["error"] as? String
                    #expect(refusal != nil, "\(bad.name): the answer is {\"error\": \"<reason>\"}: \(answer.text)")
                    tally.expect(bad.name, "\(answer.status) \(refusal ?? answer.text)", mentions: bad.refusal ?? "")
                }
            }
            let last = try await f.post(try f.bundle(target, batch: f.batchA), batch: f.batchA, token: f.token(f.batchA))
            #expect(last.status == 201, "valid upload of item \(target.id) after the corpus: \(last.text)")
            if last.status == 201 { stored.append(target.id) }

            // A body that stops before its Content-Length: the connection ends, nothing is kept.
            let cut = try f.bundle(f.itemsA[0], batch: f.batchA)
            let socket = try RawSocket.connect(port: f.port)
            try RawSocket.send(socket, Data("POST /v1/batches/\(f.batchA)/results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(f.token(f.batchA))\r\nContent-Type: application/zip\r\nContent-Length: \(cut.count + 1000)\r\n\r\n".utf8) + cut)
            shutdown(socket, Int32(SHUT_WR))
            let answer = RawSocket.receiveAll(socket)
            close(socket)
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
            tally.expect("a body cut short", answer, mentions: "ended before")

            // A retry of a stored item changes nothing.
            let retry = try await f.post(try f.bundle(f.itemsA[0], batch: f.batchA), batch: f.batchA, token: f.token(f.batchA))
            #expect(retry.status == 200 && retry.text.contains("already_stored"), "\(retry.text)")

            let all = f.itemsA + f.itemsB
            #expect(stored.count == all.count)
            let expectedFiles = f.itemsA.map { "\(f.batchA)/\($0.id)/\($0.id)_0001.png" } + f.itemsB.map { "\(f.batchB)/\($0.id)/\($0.id)_0001.png" }
            #expect(f.storedFiles() == expectedFiles.sorted(), "only the valid images, and no .incoming- temporary file")
            let outside = [f.storage.deletingLastPathComponent().appendingPathComponent(escapeName).path, "/" + escapeName, "/tmp/" + escapeName]
            #expect(outside.allSatisfy { !FileManager.default.fileExists(atPath: $0) }, "nothing written outside the storage folder")
            let done = try await f.postgres.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'")
            tally.record(
                "bad input: HTTP uploads", enqueued: stored.count, done: done, lost: all.count - done,
                duplicated: try await f.postgres.count("SELECT coalesce(sum(n - 1), 0)::bigint FROM (SELECT item_id, count(*) AS n FROM image_generation_files GROUP BY item_id) f"),
                note: "refused = a 4xx answer {\"error\": reason}; nothing written outside the storage folder, no temporary file left")
        }
    }

    /// One token floods the ingest while its share of slots is taken: every upload of the
    /// flood is answered 429 with Retry-After (before its body is read), another batch's pod
    /// is still stored, and once the slots come back the flood, retried after Retry-After as
    /// the worker does, stores each of its items once.
    @Test func aFloodFromOneToken_isHeldToItsShare_anotherPodIsStillStored_andEveryValidUploadIsStoredOnce() async throws {
        let concurrency = IngestConcurrency(maxConcurrent: 4, maxPerToken: 2, retryAfterSeconds: 1)
        try await IngestFixture.with(concurrency: concurrency) { f in
            var tally = RefusalTally()
            let held = try (0..<concurrency.maxPerToken).map { _ in try f.stalledUpload(batch: f.batchA, token: f.token(f.batchA)) }
            try await f.untilInProgress(concurrency.maxPerToken)
            // The flood: every item of batch A, four times over, all at once.
            let flood = try (0..<4).flatMap { round in try f.itemsA.map { try f.bundle($0, batch: f.batchA, seed: UInt8(round + 1)) } }
            let first = try await withThrowingTaskGroup(of: CurlClient.HTTPResponse.self) { group in
                for body in flood { group.addTask { try await f.post(body, batch: f.batchA, token: f.token(f.batchA)) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for answer in first {
                #expect(answer.status == 429 && answer.headers["Retry-After"] == "1", "\(answer.status) \(answer.text)")
                tally.expect("a flood from one token", "\(answer.status) \(answer.text)", mentions: "SPOTQ_INGEST_MAX_PER_TOKEN")
            }
            for item in f.itemsB {
                let other = try await f.post(try f.bundle(item, batch: f.batchB), batch: f.batchB, token: f.token(f.batchB))
                #expect(other.status == 201, "another pod's upload during the flood: \(other.text)")
            }
            for socket in held { close(socket) }
            // The flood again, each retried after Retry-After until the server takes it.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for body in flood {
                    group.addTask {
                        while true {
                            let answer = try await f.post(body, batch: f.batchA, token: f.token(f.batchA))
                            guard answer.status == 429 || answer.status == 503 else { return answer.status }
                            try await Task.sleep(for: RetryAfter.delay(answer.headers["Retry-After"]) ?? .seconds(1))
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 201 }.count == f.itemsA.count, "\(statuses)")
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 201 }, "\(statuses)")
            let all = f.itemsA + f.itemsB
            let done = try await f.postgres.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'")
            tally.record(
                "bad input: a flood of uploads from one token", enqueued: all.count, done: done, lost: all.count - done,
                duplicated: try await f.postgres.count("SELECT coalesce(sum(n - 1), 0)::bigint FROM (SELECT item_id, count(*) AS n FROM image_generation_files GROUP BY item_id) f"),
                note: "\(flood.count) uploads at once with the token's \(concurrency.maxPerToken) slots held: each 429 with Retry-After; the other batch stored meanwhile")
        }
    }

    // MARK: CLI

    @Test func cliInputFiles_badFilesAndLinesAreRefusedByName_andEveryValidLineIsEnqueuedOnce() async throws {
        try await EnqueueFixture.with { fixture in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_cli_input"))
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let spotq = try ChildProcess.spotqBinary()
            let database = ["--database-url", fixture.database.url, "--log-level", "error"]
            var tally = RefusalTally()
            var validIDs: [String] = []

            for round in 0..<Self.rounds {
                // Files a command cannot read at all.
                for bad in try CLIInput.unreadable(folder, round: round) {
                    for (command, refusal) in [(["enqueue", "--via", "sql"], bad.enqueue), (["assets", "import"], bad.assets)] {
                        let run = try await Shell.capture(spotq, command + [bad.path] + database)
                        #expect(run.exitCode == 1, "\(command[0]) \(bad.name): \(run.output)")
                        #expect(run.output.contains(bad.path) || bad.name == "binary garbage", "\(command[0]) \(bad.name) names the file: \(run.output)")
                        tally.expect("\(command[0]) \(bad.name)", run.output, mentions: refusal)
                    }
                }
                // A JSONL file: a bad line refuses only itself, named by its line number.
                let lines = CLIInput.enqueueLines(fixture, round: round)
                let file = folder.appendingPathComponent("requests-\(round).jsonl")
                try Data(lines.map(\.line).joined(separator: [0x0D, 0x0A])).write(to: file)
                let good = lines.filter { $0.validID != nil }.count
                let repeats = lines.filter { $0.refusal == CLIInput.duplicate }.count
                for attempt in 0..<2 {
                    // Run twice: the second run finds every good line already queued.
                    let run = try await Shell.capture(spotq, ["enqueue", file.path, "--via", "sql"] + database)
                    #expect(run.exitCode == 1, "\(run.output)")
                    #expect(run.output.contains("accepted    \(attempt == 0 ? good : 0)\n"), "\(run.output)")
                    #expect(run.output.contains("duplicates  \(attempt == 0 ? repeats : good + repeats)\n"), "\(run.output)")
                    for (index, entry) in lines.enumerated() where attempt == 0 {
                        guard let refusal = entry.refusal, refusal != CLIInput.duplicate else { continue }
                        let named = CLIInput.reportNames(run.output, refusal, line: index + 1)
                        tally.expect("line \(index + 1)", named ? refusal : run.output, mentions: refusal)
                    }
                    if attempt == 0 { tally.refused += repeats }
                }
                validIDs += lines.compactMap(\.validID)

                // Asset lists: one bad entry refuses the whole file, naming the entry.
                for bad in try CLIInput.assetFiles(folder, round: round) {
                    let run = try await Shell.capture(spotq, ["assets", "import", bad.input] + database)
                    #expect(run.exitCode == 1, "\(bad.name): \(run.output)")
                    #expect(run.output.contains("nothing imported"), "\(bad.name): \(run.output)")
                    tally.expect(bad.name, run.output, mentions: bad.refusal!)
                }
            }
            let assetsBefore = try await fixture.postgres.count("SELECT count(*) FROM assets")
            #expect(assetsBefore == 2, "no bad asset file imported anything")
            let clean = folder.appendingPathComponent("clean.csv")
            try Data(CLIInput.cleanAssetCSV.utf8).write(to: clean)
            let first = try await Shell.capture(spotq, ["assets", "import", clean.path] + database)
            let second = try await Shell.capture(spotq, ["assets", "import", clean.path] + database)
            #expect(first.exitCode == 0 && first.output.contains("2 new"), "\(first.output)")
            #expect(second.exitCode == 0 && second.output.contains("0 new, 2 unchanged"), "\(second.output)")

            let stored = try await fixture.requestIDs()
            #expect(stored == validIDs.sorted())
            tally.record(
                "bad input: CLI input files", enqueued: stored.count,
                lost: Set(validIDs).subtracting(stored).count, duplicated: stored.count - Set(stored).count,
                note: "enqueue: a bad line refuses only itself, by line number (exit 1), a re-run adds nothing; assets import: one bad entry refuses the whole file")
        }
    }
}

/// Counts refusals that said what they had to, and which reasons were seen.
struct RefusalTally {
    var refused = 0
    var reasons: [String] = []

    mutating func expect(_ input: String, _ answer: String, mentions fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let ok = answer.contains(fragment)
        #expect(ok, "\(input): the refusal should mention \(fragment); got \(answer.prefix(600))", sourceLocation: sourceLocation)
        guard ok else { return }
        refused += 1
        if !fragment.isEmpty, !reasons.contains(fragment) { reasons.append(fragment) }
    }

    /// The door's chaos row: nothing is generated here, so `done` counts stored uploads only.
    func record(_ scenario: String, enqueued: Int, done: Int = 0, deadLettered: Int = 0, lost: Int, duplicated: Int, note: String) {
        ChaosOutcome(
            scenario: scenario, enqueued: enqueued, done: done, deadLettered: deadLettered, reasons: reasons,
            refused: refused, lost: lost, duplicated: duplicated, note: note
        ).record()
    }
}

/// A bad input and the words its refusal must contain (nil: refused without an error).
struct BadInput<Input: Sendable>: Sendable {
    var name: String
    var input: Input
    var refusal: String?

    init(_ name: String, _ input: Input, _ refusal: String?) {
        self.name = name
        self.input = input
        self.refusal = refusal
    }
}
