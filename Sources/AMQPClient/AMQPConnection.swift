import Foundation
import Logging

/// One AMQP 0-9-1 connection to RabbitMQ, with its own thread.
///
/// rabbitmq-c allows one thread per connection, so every call on the C connection happens on
/// a thread this object owns; async methods suspend the caller until it has answered. The
/// thread also reads inbound frames the whole time (deliveries, confirms, broker closes) and
/// keeps heartbeats going. When the connection dies (socket error, heartbeat timeout,
/// `connection.close` from the broker), every pending call fails and every consumer ends with
/// an ``AMQPError``; ``closeReason`` then says why. Dropping the last reference closes it.
public final class AMQPConnection: Sendable {
    /// Where the connection goes; never holds the password in its description.
    public let endpoint: AMQPEndpoint
    /// The connection name the broker shows, from the configuration.
    public let name: String?
    let handle: LoopHandle

    private init(endpoint: AMQPEndpoint, name: String?, handle: LoopHandle) {
        self.endpoint = endpoint
        self.name = name
        self.handle = handle
    }

    deinit {
        handle.submit { core in core.closeConnection() }
    }

    /// Connects and logs in; throws `connectionFailed` (naming host and port, never the
    /// password), `authenticationFailed`, `timeout` or `invalidURL`.
    public static func connect(configuration: AMQPConfiguration, logger: Logger) async throws -> AMQPConnection {
        let endpoint = try configuration.endpoint()
        var logger = logger
        logger[metadataKey: AMQPLogMetadata.endpoint] = "\(endpoint.address)"
        logger[metadataKey: AMQPLogMetadata.vhost] = "\(endpoint.vhost)"
        if let name = configuration.connectionName { logger[metadataKey: AMQPLogMetadata.connection] = "\(name)" }

        let handle = LoopHandle(mailbox: Mailbox(), status: ConnectionStatus())
        let connection = AMQPConnection(endpoint: endpoint, name: configuration.connectionName, handle: handle)
        let ready = AsyncPromise<Void>()
        let threadLogger = logger
        let thread = Thread {
            let core: ConnectionCore
            do {
                core = try ConnectionCore.open(configuration: configuration, endpoint: endpoint, handle: handle, logger: threadLogger)
            } catch {
                let failure = error as? AMQPError
                    ?? AMQPError(code: .connectionFailed, message: "could not connect to \(endpoint.address): \(error)")
                handle.status.markClosed(failure)
                for job in handle.mailbox.close(reason: failure) { job.fail(failure) }
                ready.fail(failure)
                return
            }
            ready.succeed(())
            core.run()
        }
        thread.name = "amqp \(configuration.connectionName ?? endpoint.address)"
        thread.start()
        do {
            try await ready.value()
        } catch {
            logger.debug("AMQP connect failed", metadata: [AMQPLogMetadata.error: "\(error)"])
            throw error
        }
        logger.debug("AMQP connection open")
        return connection
    }

    /// True until the connection has died or been closed.
    public var isOpen: Bool { handle.status.closeReason == nil }

    /// Why the connection ended (code `closed` when this application closed it); nil while open.
    public var closeReason: AMQPError? { handle.status.closeReason }

    /// Waits until the connection has ended and returns why.
    public func waitUntilClosed() async throws -> AMQPError {
        try await handle.status.closed.value()
    }

    /// Opens a channel. A channel the broker closes (for example after a failed passive
    /// declare) reopens itself on its next use.
    public func openChannel() async throws -> AMQPChannel {
        let id = handle.mailbox.makeChannelID()
        do {
            try await handle.perform { core in try core.openChannel(id) }
        } catch is CancellationError {
            handle.submit { core in try? core.closeChannel(id) }
            throw CancellationError()
        }
        return AMQPChannel(connection: self, id: id)
    }

    /// Opens a channel, runs `body` with it and closes it afterwards, whether `body` threw or not.
    public func withChannel<T: Sendable>(
        isolation: isolated (any Actor)? = #isolation, _ body: (AMQPChannel) async throws -> T
    ) async throws -> T {
        let channel = try await openChannel()
        let result: Result<T, any Error>
        do {
            result = .success(try await body(channel))
        } catch {
            result = .failure(error)
        }
        try? await channel.close()
        return try result.get()
    }

    /// Closes the connection politely (`connection.close`, bounded by the RPC timeout) and
    /// waits until its thread has finished. Consumers end normally; pending calls fail with
    /// code `closed`. Safe to call more than once.
    public func close() async {
        handle.submit { core in core.closeConnection() }
        _ = try? await handle.status.closed.value()
    }
}
