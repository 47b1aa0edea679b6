import Foundation
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

/// A pod whose host vanishes mid-upload leaves a connection no FIN ever ends.
@Suite("chaos: an upload cut off without a goodbye")
struct HalfOpenUploadChaosTests {
    @Test func anUploadThatGoesSilentHalfWay_isDroppedAfterTheIdleTimeout_storesNothing_andTheRetryIsStoredOnce() async throws {
        try await IngestFixture.with(idleTimeout: .seconds(1)) { fixture in
            let item = fixture.itemsA[0]
            let bundle = try fixture.bundle(item, batch: fixture.batchA)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("bundle") + ".zip")
            try bundle.write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let silent = try await Shell.capture("/usr/bin/python3", [
                try TestEnvironment.script("clients/half_open_upload.py"), "\(fixture.port)", "/v1/batches/\(fixture.batchA)/results",
                fixture.token(fixture.batchA), file.path, "--wait", "20",
            ])
            let seconds = silent.output.firstMatch(of: /closed after ([0-9.]+) s/).flatMap { Double($0.1) }
            #expect(seconds != nil && seconds! < 10, "the server ended the silent upload: \(silent.output)")
            #expect(try await fixture.fileRows(item.id) == 0)
            #expect(fixture.storedFiles().isEmpty, "half a bundle left nothing behind: \(fixture.storedFiles())")
            // The pod's retry (another pod's, after the requeue) is stored once.
            let retry = try await fixture.post(bundle, batch: fixture.batchA, token: fixture.token(fixture.batchA))
            #expect(retry.status == 201 || retry.status == 200, "\(retry.text)")
            let stored = try await fixture.fileRows(item.id)
            #expect(stored == 1)
            let outcome = ChaosOutcome(scenario: "upload gone silent half-way (host vanished)", enqueued: 1, done: stored,
                                       deadLettered: 0, lost: 1 - stored, duplicated: max(0, stored - 1),
                                       note: "connection closed by the server after \(seconds.map { String(format: "%.1f", $0) } ?? "?") s (idle timeout 1 s)")
            outcome.record()
        }
    }
}
