internal import CRabbitMQ
import Foundation
import Logging

/// Everything that touches one `amqp_connection_state_t`, confined to the connection's thread.
///
/// The thread runs ``run()``: it polls the socket and the mailbox's wake pipe, runs submitted
/// jobs, then drains every frame rabbitmq-c has decoded or can decode without blocking and
/// dispatches it (deliveries, confirms, returns, cancels, closes). Synchronous AMQP methods
/// run inside jobs via rabbitmq-c's RPC calls, which queue unrelated frames for the dispatcher.
/// Calling `amqp_simple_wait_frame_noblock` on every turn also lets rabbitmq-c send heartbeats;
/// silence from the broker is detected here, since a zero-timeout wait never reports it.
final class ConnectionCore {
    let state: amqp_connection_state_t
    let configuration: AMQPConfiguration
    let endpoint: AMQPEndpoint
    let handle: LoopHandle
    var logger: Logger
    /// Negotiated heartbeat interval in seconds (0: off).
    let heartbeat: Int
    let channelMax: UInt16

    var channels: [Int: ChannelRecord] = [:]
    var wireChannels: [UInt16: ChannelRecord] = [:]
    var publishWaiters: [Int: PublishWaiter] = [:]
    var nextToken = 1
    var lastInbound = ContinuousClock.now
    /// Set once the connection is unusable; the loop then tears down and the thread ends.
    private(set) var deadError: AMQPError?

    init(
        state: amqp_connection_state_t, configuration: AMQPConfiguration, endpoint: AMQPEndpoint,
        handle: LoopHandle, logger: Logger, heartbeat: Int, channelMax: UInt16
    ) {
        self.state = state
        self.configuration = configuration
        self.endpoint = endpoint
        self.handle = handle
        self.logger = logger
        self.heartbeat = heartbeat
        self.channelMax = channelMax
    }

    var isDead: Bool { deadError != nil }

    /// Marks the connection unusable. Only the first reason counts.
    func markDead(_ error: AMQPError) {
        guard deadError == nil else { return }
        deadError = error
        if error.code == .closed {
            logger.debug("AMQP connection closing")
        } else {
            logger.warning("AMQP connection lost", metadata: [AMQPLogMetadata.error: "\(error)"])
        }
    }

    // MARK: The loop

    private var tickMilliseconds: Int32 {
        heartbeat > 0 ? Int32(min(500, heartbeat * 250)) : 500
    }

    func run() {
        let socket = amqp_get_sockfd(state)
        var fds = [
            pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
            pollfd(fd: handle.mailbox.wakeFD, events: Int16(POLLIN), revents: 0),
        ]
        // Whether the last pump stopped at its limit rather than at "nothing more": over TLS,
        // OpenSSL may then hold decrypted bytes that poll() on the socket cannot see.
        var moreMayBeBuffered = false
        while deadError == nil {
            let busy = moreMayBeBuffered || handle.mailbox.hasJobs || amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = poll(&fds, 2, busy ? 0 : tickMilliseconds)
            if ready < 0 && errno != EINTR {
                markDead(AMQPError(code: .connectionClosed, message: "poll() on the AMQP socket failed (errno \(errno))"))
                break
            }
            if fds[1].revents != 0 { handle.mailbox.drainWakeups() }
            if fds[0].revents != 0 { lastInbound = .now }
            for job in handle.mailbox.takeAll() {
                if let deadError { job.fail(deadError) } else { job.run(self) }
            }
            moreMayBeBuffered = deadError == nil && !pumpInbound(limit: 512)
            if deadError == nil { checkTimers() }
        }
        tearDown()
    }

    /// Reads and dispatches up to `limit` frames without blocking; lets rabbitmq-c send a
    /// heartbeat when one is due. True when it read everything there was (rabbitmq-c reads
    /// through OpenSSL first, so "nothing more" covers TLS's buffer too); false when it
    /// stopped at `limit` (or the connection died).
    @discardableResult
    func pumpInbound(limit: Int) -> Bool {
        var immediately = timeval(tv_sec: 0, tv_usec: 0)
        for _ in 0..<limit {
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame_noblock(state, &frame, &immediately)
            if status == AMQP_STATUS_TIMEOUT.rawValue { return true }
            guard status == AMQP_STATUS_OK.rawValue else {
                markDead(libraryError(status, while: "reading from the broker"))
                return false
            }
            lastInbound = .now
            dispatch(frame)
            guard deadError == nil else { return false }
            amqp_maybe_release_buffers_on_channel(state, frame.channel)
        }
        return false
    }

    /// Dispatches frames rabbitmq-c queued during RPCs, so none is left for a channel number
    /// about to be reused.
    func drainQueuedFrames() {
        while deadError == nil && amqp_frames_enqueued(state) != 0 {
            pumpInbound(limit: 1)
        }
    }

    private func checkTimers() {
        let now = ContinuousClock.now
        if heartbeat > 0 && now - lastInbound > .seconds(2 * heartbeat) {
            markDead(AMQPError(
                code: .heartbeatTimeout,
                message: "nothing heard from the broker at \(endpoint.address) for \(2 * heartbeat) s "
                    + "(two heartbeat intervals): the broker or the network is gone"))
            return
        }
        let expired = publishWaiters.filter { $0.value.deadline <= now }
        for (token, waiter) in expired {
            publishWaiters[token] = nil
            waiter.promise.fail(AMQPError(
                code: .timeout,
                message: "the broker did not confirm \(waiter.remaining) of \(waiter.count) published messages "
                    + "within \(configuration.confirmTimeout); their fate is unknown, publish them again"))
        }
    }

    private func tearDown() {
        let error = deadError ?? AMQPError.closedByApplication("connection")
        handle.status.markClosed(error)
        for job in handle.mailbox.close(reason: error) { job.fail(error) }
        for (_, waiter) in publishWaiters { waiter.promise.fail(error) }
        publishWaiters = [:]
        let graceful = error.code == .closed
        for record in channels.values {
            for consumer in record.consumers.values {
                consumer.finish(graceful ? nil : error, dropBuffered: true)
            }
            record.consumers = [:]
            record.wire = nil
        }
        channels = [:]
        wireChannels = [:]
        amqp_destroy_connection(state)
        logger.debug("AMQP connection thread finished")
    }

    // MARK: Closing

    /// Sends `connection.close`, waits (up to the RPC timeout, at most 5 s) for `close-ok`,
    /// then ends.
    func closeConnection() {
        guard deadError == nil else { return }
        var timeout = timeval(min(configuration.rpcTimeout, .seconds(5)))
        _ = amqp_set_rpc_timeout(state, &timeout)
        let reply = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        if reply.reply_type != AMQP_RESPONSE_NORMAL {
            logger.debug("AMQP connection.close was not answered cleanly; closing the socket anyway")
        }
        markDead(.closedByApplication("connection"))
    }

    // MARK: Error mapping

    func libraryError(_ status: Int32, while activity: String) -> AMQPError {
        let text = String(cString: amqp_error_string2(status))
        switch status {
        case AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue:
            return AMQPError(code: .heartbeatTimeout, message: "heartbeat timeout while \(activity): the broker at \(endpoint.address) stopped answering")
        case AMQP_STATUS_TIMEOUT.rawValue:
            return AMQPError(code: .timeout, message: "no answer from the broker at \(endpoint.address) while \(activity) (\(text)); the connection was closed")
        case AMQP_STATUS_CONNECTION_CLOSED.rawValue, AMQP_STATUS_SOCKET_ERROR.rawValue, AMQP_STATUS_SOCKET_CLOSED.rawValue,
            AMQP_STATUS_SSL_ERROR.rawValue:
            return AMQPError(code: .connectionClosed, message: "the connection to \(endpoint.address) broke while \(activity): \(text)")
        default:
            return AMQPError(code: .protocolError, message: "rabbitmq-c failed while \(activity): \(text) (status \(status))")
        }
    }

    func connectionCloseError(_ method: amqp_method_t) -> AMQPError {
        guard let close = method.decoded?.assumingMemoryBound(to: amqp_connection_close_t.self).pointee else {
            return AMQPError(code: .connectionClosed, message: "the broker closed the connection")
        }
        return AMQPError(
            code: .connectionClosed,
            message: "the broker at \(endpoint.address) closed the connection",
            replyCode: Int(close.reply_code), replyText: close.reply_text.string)
    }

    func sendConnectionCloseOk() {
        var ok = amqp_connection_close_ok_t()
        _ = amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
    }

    func sendChannelCloseOk(_ wire: UInt16) {
        var ok = amqp_channel_close_ok_t()
        _ = amqp_send_method(state, wire, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok)
    }
}
