import PostgresClient
import PostgresTestSupport
import SpotqTestSupport
import Testing

@Suite("LISTEN/NOTIFY")
struct PostgresListenerTests {
    @Test func notifications_arriveOnTheStream_inOrder() async throws {
        try await TemporaryDatabase.with { configuration in
            let listener = PostgresListener(configuration: configuration, logger: testLogger)
            let events = listener.events(channels: ["spotq_a", "spotq_b"])
            let received = try await withTimeout(.seconds(15), "two notifications") {
                var received: [String] = []
                for await event in events {
                    switch event {
                    case .listening:
                        let client = PostgresClient(configuration: configuration, logger: testLogger)
                        try await client.query("SELECT pg_notify('spotq_a', \("one")), pg_notify('spotq_b', \("two"))")
                        await client.shutdown()
                    case .notification(let n):
                        received.append("\(n.channel):\(n.payload)")
                    case .connectionLost:
                        break
                    }
                    if received.count == 2 { break }
                }
                return received
            }
            #expect(received == ["spotq_a:one", "spotq_b:two"])
        }
    }
}
