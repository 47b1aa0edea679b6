import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("server: pending demand")
struct PendingWatcherTests {
    @Test func aRowInsertedBySQL_isSeenThroughNotify_notTheRescan() async throws {
        try await TemporaryDatabase.with { configuration in
            let client = PostgresClient(configuration: configuration, logger: testLogger)
            try await EnqueueFixture.migrateAndRegister(client)
            let seen = DemandLog()
            var watcher = PendingWatcher(
                listener: PostgresListener(configuration: configuration, logger: testLogger),
                store: QueueStore(client: client), logger: testLogger, onDemand: { seen.append($0) })
            // An hour: only NOTIFY can deliver the row within this test.
            watcher.rescanInterval = .seconds(3600)
            let task = Task { try await watcher.watch() }
            // The first scan happens once LISTEN is in effect.
            try await eventually("the first scan", timeout: .seconds(10)) { !seen.all.isEmpty }
            #expect(seen.all.first?.items == 0)

            let message = TextToImageRequest(requestID: "by-sql", checkpoint: EnqueueFixture.checkpoint, positive: "p").messageJSON()
            let inserted = ContinuousClock.now
            _ = try await QueueStore(client: client).insert([EnqueueMessage(requestID: "by-sql", body: message)])
            try await eventually("the NOTIFY", timeout: .seconds(10)) { seen.all.last?.items == 1 }
            print("pending watcher saw the inserted row \(ContinuousClock.now - inserted) after the commit")
            #expect(seen.all.last?.oldestCreatedAt != nil)
            task.cancel()
            _ = await task.result
            await client.shutdown()
        }
    }
}

/// What the watcher reported, in order.
final class DemandLog: @unchecked Sendable {
    // Every access holds `lock`.
    private let lock = NSLock()
    private var entries: [PendingDemand] = []
    func append(_ demand: PendingDemand) { lock.withLock { entries.append(demand) } }
    var all: [PendingDemand] { lock.withLock { entries } }
}
