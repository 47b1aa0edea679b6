import AMQPClient
import ArgumentParser
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCLI
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

@Suite("spotq enqueue FILE.jsonl")
struct BulkEnqueueTests {
    /// 6 lines: 3 valid, a duplicate of the first, a broken line, an unknown checkpoint; one blank line.
    func lines(_ fixture: EnqueueFixture) -> [EnqueueLine] {
        let text = [
            fixture.request("f1"), fixture.request("f2"), fixture.request("f1"),
            Array("{broken".utf8), [], fixture.request("f3"), fixture.request("f4", checkpoint: "gone.safetensors"),
        ].map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
        return JSONLines.split(Array(text.utf8))
    }

    func expectSummary(_ summary: EnqueueSummary) {
        #expect(summary.accepted == 3)
        #expect(summary.duplicates == 1)
        #expect(summary.rejected == 2)
        let reasons = summary.reasonsByCount
        #expect(reasons.contains { $0.reason.hasPrefix("the body is not valid JSON") && $0.places == [4] })
        #expect(reasons.contains { $0.reason.contains(#"unknown checkpoint "gone.safetensors""#) && $0.places == [7] })
    }

    @Test func viaSQL_summaryCountsAcceptedDuplicatesAndRejectedWithLineNumbers() async throws {
        try await EnqueueFixture.with { fixture in
            let summary = try await SQLBulkEnqueuer(store: QueueStore(client: fixture.postgres)).run(lines(fixture))
            expectSummary(summary)
            #expect(try await fixture.requestIDs() == ["f1", "f2", "f3"])
        }
    }

    @Test func viaAMQP_theServersAnswersMakeTheSameSummary() async throws {
        try await EnqueueFixture.with { fixture in
            let result = try await fixture.withConsumer {
                var enqueuer = AMQPBulkEnqueuer(connection: fixture.connection)
                enqueuer.exchange = fixture.exchange
                // Generous: the server's answers come late under the whole suite's load.
                enqueuer.answerTimeout = .seconds(60)
                return try await enqueuer.run(lines(fixture))
            }
            expectSummary(result.summary)
            #expect(result.unanswered == 0)
            #expect(result.published == 5)
            #expect(try await fixture.requestIDs() == ["f1", "f2", "f3"])
            // The unknown checkpoint was dead-lettered by the server; the broken line never left the client.
            #expect(try await fixture.deadLetters(1).first?.reason?.contains("gone.safetensors") == true)
        }
    }

    @Test func theCommand_viaSQL_writesTheRows_andExits1WhenALineWasRejected() async throws {
        try await EnqueueFixture.with { fixture in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-enqueue-\(UUID().uuidString).jsonl")
            try Data(lines(fixture).map { $0.body }.joined(separator: [10]) ).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            var command = try SpotqCommand.parseAsRoot([
                "enqueue", file.path, "--via", "sql", "--database-url", fixture.database.url, "--log-level", "error",
            ])
            await #expect(throws: ExitCode(1)) {
                if var asyncCommand = command as? any AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
            }
            #expect(try await fixture.requestIDs() == ["f1", "f2", "f3"])
        }
    }
}
