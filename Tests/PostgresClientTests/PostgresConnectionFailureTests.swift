import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqTestSupport
import Testing

@Suite("PostgreSQL connection failures")
struct PostgresConnectionFailureTests {
    @Test func connectionRefused_namesHostAndPort_andNeverThePassword() async throws {
        let port = try FreePort.find()
        let configuration = try PostgresConfiguration(url: "postgresql://spotq:hunter2secret@127.0.0.1:\(port)/spotq")
        let error = try await #require(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(configuration: configuration, logger: testLogger)
        }
        #expect(error.code == .connectionFailed)
        #expect(error.description.contains("127.0.0.1:\(port)"))
        #expect(!error.description.contains("hunter2secret"))
        #expect(!configuration.redactedURL.contains("hunter2secret"))
    }

    @Test func urlWithoutScheme_isRejectedAtConfiguration() {
        #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "127.0.0.1:5432/spotq") }
    }

    @Test func serverRestart_isReported_andTheClientReconnects() async throws {
        let server = try PrivatePostgres()
        try await server.start()
        do {
            let client = PostgresClient(configuration: try PostgresConfiguration(url: server.url), logger: testLogger)
            #expect(try await client.query("SELECT 1").first?.decode(Int.self, at: 0) == 1)

            try await server.restart()

            // The first statement after the restart finds the old session dead and says so;
            // the one after it runs on a new connection.
            let lost = try await #require(throws: PostgresError.self) { try await client.query("SELECT 1") }
            #expect(lost.code == .connectionLost)
            #expect(lost.isTransient)
            #expect(try await client.query("SELECT 2").first?.decode(Int.self, at: 0) == 2)
            await client.shutdown()
            await server.destroy()
        } catch {
            await server.destroy()
            throw error
        }
    }

    @Test func listener_reportsTheDrop_andListensAgainAfterTheServerReturns() async throws {
        let server = try PrivatePostgres()
        try await server.start()
        do {
            let configuration = try PostgresConfiguration(url: server.url)
            var listener = PostgresListener(configuration: configuration, logger: testLogger)
            listener.initialRetryDelay = .milliseconds(50)
            let events = listener.events(channels: ["spotq_test"])
            let outcome = try await withTimeout(.seconds(60), "the listener to come back") {
                var listens = 0
                var losses = 0
                for await event in events {
                    switch event {
                    case .listening:
                        listens += 1
                        if listens == 1 {
                            try await server.restart()
                        } else {
                            let notifier = PostgresClient(configuration: configuration, logger: testLogger)
                            try await notifier.query("SELECT pg_notify('spotq_test', 'after restart')")
                            await notifier.shutdown()
                        }
                    case .connectionLost:
                        losses += 1
                    case .notification(let notification):
                        return (losses, notification.payload)
                    }
                }
                return (losses, "")
            }
            #expect(outcome.0 >= 1)
            #expect(outcome.1 == "after restart")
            await server.destroy()
        } catch {
            await server.destroy()
            throw error
        }
    }
}
