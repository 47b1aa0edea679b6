import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

/// Real non-Swift clients, using only what the README says.
@Suite("enqueue: the README's SQL through psql, and a Python pika publisher")
struct ReadmeClientTests {
    static let readmeCheckpoint = "sd_xl_base_1.0.safetensors"
    static let readmeLora = "ink_style.safetensors"

    /// Runs `sql` with psql; returns its exit code and output.
    func psql(_ sql: String, _ database: PostgresConfiguration) async throws -> (exitCode: Int32, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-readme-\(UUID().uuidString).sql")
        try sql.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        return try await Shell.capture(try ReadmeBlocks.psql(), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.url, "-f", file.path])
    }

    /// The insert with NULL where the workflow literal is.
    func withoutWorkflow(_ insert: String) throws -> String {
        guard let start = insert.range(of: #"  '{"4":"#), let end = insert.range(of: "}}}',", range: start.upperBound..<insert.endIndex) else {
            throw TestEnvironmentError(description: "the README insert's workflow literal was not found")
        }
        return insert.replacingCharacters(in: start.lowerBound..<end.upperBound, with: "  NULL,")
    }

    func registerReadmeAssets(_ client: PostgresClient) async throws {
        let assets = try AssetFileParser.parse(Array(try ReadmeBlocks.block("assets-csv").utf8), format: .csv)
        #expect(Set(assets.map(\.filename)) == [Self.readmeCheckpoint, Self.readmeLora])
        _ = try await AssetStore(client: client).importAssets(assets)
    }

    @Test func theREADMEInsert_works_isIdempotent_andBadVariantsFailWithClearMessages() async throws {
        try await TemporaryDatabase.with { database in
            let client = PostgresClient(configuration: database, logger: testLogger)
            let migrations = try MigrationDirectory.load(TestEnvironment.packageRoot().appendingPathComponent("migrations"))
            _ = try await Migrator(client: client, logger: testLogger).migrate(migrations)
            try await registerReadmeAssets(client)
            let insert = try ReadmeBlocks.block("sql-enqueue")
            // As the website connects: a login in the spotq_website role (README, "Security").
            try await TemporaryLogin.with(memberOf: "spotq_website", on: database) { website in
                try await runREADMEInsert(insert, as: website, owner: client)
            }
            await client.shutdown()
        }
    }

    func runREADMEInsert(_ insert: String, as database: PostgresConfiguration, owner client: PostgresClient) async throws {
        let first = try await psql(insert, database)
        #expect(first.exitCode == 0, "\(first.output)")
        let retry = try await psql(insert, database)
        #expect(retry.exitCode == 0, "ON CONFLICT makes a retry harmless: \(retry.output)")
        let count = try await client.query("SELECT count(*)::bigint FROM image_generation_queue WHERE request_id = 'order-1234-image-1' AND status = 'pending'")
        #expect(try count[0].decode(Int64.self, at: 0) == 1)

        let variants: [(String, String, String)] = [
            ("without ON CONFLICT, a duplicate", insert.replacingOccurrences(of: "ON CONFLICT (request_id) DO NOTHING", with: ""), "request_id_must_be_unique"),
            ("an unknown checkpoint", insert.replacingOccurrences(of: "  'sd_xl_base_1.0.safetensors',", with: "  'sdxl.safetensors',"), #"unknown checkpoint "sdxl.safetensors""#),
            ("a LoRA as the checkpoint", insert.replacingOccurrences(of: "  'sd_xl_base_1.0.safetensors',", with: "  'ink_style.safetensors',"), "is a lora, not a checkpoint"),
            ("an unknown LoRA", insert.replacingOccurrences(of: #"'[{"file": "ink_style.safetensors""#, with: #"'[{"file": "nope.safetensors""#), "nope.safetensors"),
            ("a strength as text", insert.replacingOccurrences(of: #""strength": 0.8}]'"#, with: #""strength": "0.8"}]'"#), "strength must be a number, not string"),
            ("loras as an object", insert.replacingOccurrences(of: #"'[{"file": "ink_style.safetensors", "strength": 0.8}]'"#, with: #"'{"file": "ink_style.safetensors"}'"#), "loras must be a JSON array"),
            ("a missing workflow", try withoutWorkflow(insert), #"null value in column "workflow""#),
            ("malformed JSON in prompt", insert.replacingOccurrences(of: #"'{"positive": "#, with: #"'{positive: "#), "invalid input syntax for type json"),
        ]
        for (label, sql, expected) in variants {
            let sqlForRun = sql.replacingOccurrences(of: "'order-1234-image-1'", with: label.hasPrefix("without") ? "'order-1234-image-1'" : "'order-x-\(label.count)'")
            let result = try await psql(sqlForRun, database)
            #expect(result.exitCode != 0, "\(label) should fail")
            #expect(result.output.contains("ERROR"), "\(label): \(result.output)")
            if !expected.isEmpty { #expect(result.output.contains(expected), "\(label): \(result.output)") }
        }
        #expect(try await client.query("SELECT count(*)::bigint FROM image_generation_queue")[0].decode(Int64.self, at: 0) == 1)
        // The website reads its request's status back.
        let status = try await psql("SELECT status FROM image_generation_queue WHERE request_id = 'order-1234-image-1'", database)
        #expect(status.exitCode == 0 && status.output.contains("pending"), "\(status.output)")
    }

    @Test func theREADMEMessage_isAccepted() async throws {
        try await EnqueueFixture.with { fixture in
            try await registerReadmeAssets(fixture.postgres)
            let body = Array(try ReadmeBlocks.block("amqp-message").utf8)
            try await fixture.withConsumer {
                try await fixture.publish(body)
                try await eventually("the README message's row") { try await fixture.requestIDs() == ["order-1234-image-2"] }
            }
        }
    }

    @Test func aPythonPikaPublisher_followingTheREADME_getsRowsAndReasonedDeadLetters() async throws {
        try await EnqueueFixture.with { fixture in
            try await registerReadmeAssets(fixture.postgres)
            let output = try await Shell.run(try ReadmeBlocks.python(), [
                TestEnvironment.packageRoot().appendingPathComponent("scripts/clients/enqueue_with_pika.py").path,
                try TestEnvironment.amqpURL(), Self.readmeCheckpoint, Self.readmeLora, "--exchange", fixture.exchange, "--count", "10",
            ])
            struct Report: Decodable {
                struct Invalid: Decodable { var label: String; var expect: String }
                var valid: [String]
                var invalid: [Invalid]
            }
            let jsonLine = output.split(separator: "\n").last.map(String.init) ?? ""
            let report = try JSONDecoder().decode(Report.self, from: Data(jsonLine.utf8))
            #expect(report.valid.count == 10)
            try await fixture.withConsumer {
                try await eventually("the valid rows", timeout: .seconds(60)) { try await fixture.rowCount() == report.valid.count }
                let dead = try await fixture.deadLetters(report.invalid.count)
                for (invalid, letter) in zip(report.invalid, dead) {
                    #expect(letter.reason?.contains(invalid.expect) == true, "\(invalid.label): \(letter.reason ?? "no reason")")
                }
                try await eventually("queue drained") { try await fixture.ready(fixture.queue) == 0 }
            }
            #expect(try await fixture.requestIDs() == report.valid.sorted())
        }
    }
}
