import AMQPClient
import Foundation
import SpotqTestSupport
import Testing

/// `amqps://` against the shared broker's TLS listener (scripts/rabbitmq-instance.sh makes
/// its CA and certificate, which names DNS:localhost and IP:127.0.0.1).
@Suite("AMQP over TLS against the real broker")
struct AMQPTLSTests {
    static func configuration(url: String? = nil, caFile: String? = nil) throws -> AMQPConfiguration {
        var configuration = try AMQPTest.configuration()
        configuration.url = try url ?? TestEnvironment.amqpsURL()
        configuration.tls.caFile = try caFile ?? TestEnvironment.amqpCAFile()
        return configuration
    }

    /// Many small messages arrive in TLS records of many frames each, and a consumer that
    /// acks slowly leaves some of them decrypted inside OpenSSL, where poll() on the socket
    /// cannot see them: every one must still arrive, in order, without waiting for more
    /// traffic to wake the connection.
    @Test func manySmallMessagesAndASlowConsumer_overTLS_getEveryMessageInOrder() async throws {
        let connection = try await AMQPConnection.connect(configuration: try Self.configuration(), logger: AMQPTest.logger)
        let queue = TestEnvironment.uniqueName("tls")
        let channel = try await connection.openChannel()
        try await channel.declareQueue(queue)
        let count = 3_000
        let outcome = try await channel.publishBatch((0..<count).map {
            AMQPOutgoingMessage(exchange: "", routingKey: queue, body: Array("m\($0)".utf8))
        })
        #expect(outcome.nacked.isEmpty && outcome.returned.isEmpty)

        let consumerChannel = try await connection.openChannel()
        try await consumerChannel.qos(prefetchCount: 1_000)
        let consumer = try await consumerChannel.consume(queue: queue)
        let iterator = consumer.makeAsyncIterator()
        for index in 0..<count {
            let delivery = try #require(try await nextDelivery(iterator), "delivery \(index) of \(count)")
            #expect(String(decoding: delivery.body, as: UTF8.self) == "m\(index)")
            try await delivery.ack()
            // Slow at first, so the broker's burst waits in the client's buffers.
            if index < 20 { try await Task.sleep(for: .milliseconds(20)) }
        }
        await consumer.cancel()
        #expect(try await channel.deleteQueue(queue) == 0)
        try await connection.close()
    }

    @Test func aBrokerSignedByAnotherCA_isRefused_sayingTheCertificateIsNotTrusted() async throws {
        // The system's public CAs did not sign the test broker's certificate.
        let configuration = try Self.configuration(caFile: AMQPTLSSettings.systemBundle)
        let error = await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration: configuration, logger: AMQPTest.logger)
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("not signed by a trusted CA") == true, "\(String(describing: error))")
        #expect(error?.message.contains("SPOTQ_AMQP_CA_FILE") == true)
        #expect(error?.message.contains("is running") == false, "the broker answered; the hint would mislead")
    }

    @Test func aHostNameTheCertificateDoesNotName_isRefused_sayingWhichHost() async throws {
        // The certificate lists 127.0.0.1 as an IP address, which rabbitmq-c 0.11 never
        // matches: only DNS names count.
        let url = try TestEnvironment.amqpsURL().replacingOccurrences(of: "@localhost:", with: "@127.0.0.1:")
        let error = await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration: try Self.configuration(url: url), logger: AMQPTest.logger)
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("does not name the host '127.0.0.1'") == true, "\(String(describing: error))")
    }

    @Test func plainAMQPToTheTLSPort_andAMissingCAFile_failWithErrorsThatSaySo() async throws {
        let tlsURL = try TestEnvironment.amqpsURL()
        let plainToTLSPort = tlsURL.replacingOccurrences(of: "amqps://", with: "amqp://")
        var plain = try Self.configuration(url: plainToTLSPort)
        plain.handshakeTimeout = .seconds(3)
        await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration: plain, logger: AMQPTest.logger)
        }
        let missing = try Self.configuration(caFile: "/nonexistent/ca.pem")
        let error = #expect(throws: AMQPError.self) { _ = try missing.endpoint() }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("/nonexistent/ca.pem") == true)
    }

    @Test func amqpsURLs_parseWithTLSAndThePort5671ByDefault() throws {
        let endpoint = try AMQPEndpoint(parsing: "amqps://pod:secret@broker.example.com/spotq")
        #expect(endpoint.usesTLS)
        #expect(endpoint.port == 5671)
        #expect(endpoint.description == "amqps://pod@broker.example.com:5671 vhost 'spotq'")
        #expect(!(try AMQPEndpoint(parsing: "amqp://a:b@h/v")).usesTLS)
    }
}
