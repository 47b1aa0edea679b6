internal import CRabbitMQ
import Foundation
import Logging

// Opening a connection: TCP connect with a timeout, then the AMQP handshake done by hand.
// rabbitmq-c's amqp_login is variadic, which Swift cannot call, so the handshake sends
// start-ok / tune-ok / open itself with the library's framing, and applies the negotiated
// limits with amqp_tune_connection, exactly as amqp_login would.

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}

extension ConnectionCore {
    static func open(
        configuration: AMQPConfiguration, endpoint: AMQPEndpoint, handle: LoopHandle, logger: Logger
    ) throws -> ConnectionCore {
        guard let state = amqp_new_connection() else {
            throw AMQPError(code: .connectionFailed, message: "rabbitmq-c could not allocate a connection (out of memory)")
        }
        do {
            try connectSocket(state, configuration: configuration, endpoint: endpoint)
            var handshake = Handshake(state: state, configuration: configuration, endpoint: endpoint)
            let tuned = try handshake.run()
            var rpcTimeout = timeval(configuration.rpcTimeout)
            _ = amqp_set_rpc_timeout(state, &rpcTimeout)
            amqp_maybe_release_buffers(state)
            return ConnectionCore(
                state: state, configuration: configuration, endpoint: endpoint, handle: handle,
                logger: logger, heartbeat: tuned.heartbeat, channelMax: tuned.channelMax)
        } catch {
            amqp_destroy_connection(state)
            throw error
        }
    }

    private static func connectSocket(
        _ state: amqp_connection_state_t, configuration: AMQPConfiguration, endpoint: AMQPEndpoint
    ) throws {
        let socket = try endpoint.usesTLS
            ? tlsSocket(state, settings: configuration.tls, endpoint: endpoint)
            : tcpSocket(state)
        var timeout = timeval(configuration.connectTimeout)
        errno = 0
        let status = amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &timeout)
        let savedErrno = errno
        guard status == AMQP_STATUS_OK.rawValue else {
            let reason: String
            // A certificate refusal means the broker answered: the "is it running" hint would mislead.
            var reachable = false
            switch status {
            case AMQP_STATUS_TIMEOUT.rawValue:
                reason = "no answer within \(configuration.connectTimeout)"
            case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED.rawValue:
                reason = "the host name could not be resolved"
            case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue:
                reason = "TLS: the broker's certificate does not name the host '\(endpoint.host)' "
                    + "(rabbitmq-c matches DNS names only, never IP addresses: connect by a name the certificate lists)"
                reachable = true
            case AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue:
                reason = "TLS: the broker's certificate is not signed by a trusted CA "
                    + "(CA file: \(configuration.tls.effectiveCAFile ?? "none"); set SPOTQ_AMQP_CA_FILE to the CA that signed it)"
                reachable = true
            case AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue:
                reason = "the TLS handshake failed (is \(endpoint.address) a TLS listener? amqps:// usually uses port 5671)"
                reachable = true
            case AMQP_STATUS_SOCKET_ERROR.rawValue where savedErrno == ECONNREFUSED || savedErrno == EINPROGRESS:
                // rabbitmq-c's non-blocking connect leaves errno at EINPROGRESS when the
                // connection is refused (it reads SO_ERROR without passing it on).
                reason = "connection refused (or host unreachable)"
            case AMQP_STATUS_SOCKET_ERROR.rawValue where savedErrno != 0:
                reason = String(cString: strerror(savedErrno))
            default:
                reason = String(cString: amqp_error_string2(status))
            }
            throw AMQPError(
                code: .connectionFailed,
                message: "could not connect to the AMQP broker at \(endpoint.address): \(reason)"
                    + (reachable ? "" : "; check that RabbitMQ is running and listening there"))
        }
    }
}

extension ConnectionCore {
    private static func tcpSocket(_ state: amqp_connection_state_t) throws -> OpaquePointer {
        guard let socket = amqp_tcp_socket_new(state) else {
            throw AMQPError(code: .connectionFailed, message: "rabbitmq-c could not create a TCP socket object")
        }
        return socket
    }

    /// A TLS socket that checks the broker's certificate and host name (unless told not to),
    /// TLS 1.2 or newer (rabbitmq-c 0.11 still negotiates 1.3 with OpenSSL 3).
    private static func tlsSocket(_ state: amqp_connection_state_t, settings: AMQPTLSSettings, endpoint: AMQPEndpoint) throws -> OpaquePointer {
        guard let socket = amqp_ssl_socket_new(state) else {
            throw AMQPError(code: .connectionFailed, message: "rabbitmq-c could not create a TLS socket object (OpenSSL failed to initialise)")
        }
        if let caFile = settings.effectiveCAFile {
            let status = amqp_ssl_socket_set_cacert(socket, caFile)
            guard status == AMQP_STATUS_OK.rawValue else {
                throw AMQPError(code: .invalidArgument, message: "the CA file '\(caFile)' for \(endpoint.address) is not a PEM certificate bundle OpenSSL can load")
            }
        } else if settings.verifyPeer {
            throw AMQPError(
                code: .invalidArgument,
                message: "no CA to check the broker's certificate with: set SPOTQ_AMQP_CA_FILE (there is no \(AMQPTLSSettings.systemBundle))")
        }
        amqp_ssl_socket_set_verify_peer(socket, settings.verifyPeer ? 1 : 0)
        amqp_ssl_socket_set_verify_hostname(socket, settings.verifyHostname ? 1 : 0)
        let status = amqp_ssl_socket_set_ssl_versions(socket, AMQP_TLSv1_2, AMQP_TLSvLATEST)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(code: .connectionFailed, message: "rabbitmq-c refused TLS 1.2+: \(String(cString: amqp_error_string2(status)))")
        }
        return socket
    }
}

/// The AMQP 0-9-1 connection handshake, from the protocol header to `connection.open-ok`.
private struct Handshake {
    let state: amqp_connection_state_t
    let configuration: AMQPConfiguration
    let endpoint: AMQPEndpoint
    let deadline: ContinuousClock.Instant
    var sentCredentials = false

    init(state: amqp_connection_state_t, configuration: AMQPConfiguration, endpoint: AMQPEndpoint) {
        self.state = state
        self.configuration = configuration
        self.endpoint = endpoint
        self.deadline = .now + configuration.handshakeTimeout
    }

    mutating func run() throws -> (heartbeat: Int, channelMax: UInt16) {
        try check(amqp_send_header(state), "sending the protocol header")

        let start = try waitForMethod(AMQP_CONNECTION_START_METHOD, "waiting for connection.start")
        let startFields = start.decoded!.assumingMemoryBound(to: amqp_connection_start_t.self).pointee
        let mechanisms = startFields.mechanisms.string.split(separator: " ")
        guard mechanisms.contains("PLAIN") else {
            throw AMQPError(
                code: .connectionFailed,
                message: "the broker at \(endpoint.address) does not offer PLAIN authentication (offers: \(mechanisms.joined(separator: ", ")))")
        }
        amqp_maybe_release_buffers(state)

        try sendStartOk()
        sentCredentials = true

        let tune = try waitForMethod(AMQP_CONNECTION_TUNE_METHOD, "logging in")
        let tuneFields = tune.decoded!.assumingMemoryBound(to: amqp_connection_tune_t.self).pointee
        var channelMax = UInt16(configuration.channelMax)
        if tuneFields.channel_max != 0 && tuneFields.channel_max < channelMax { channelMax = tuneFields.channel_max }
        var frameMax = UInt32(configuration.frameMax)
        if tuneFields.frame_max != 0 && tuneFields.frame_max < frameMax { frameMax = tuneFields.frame_max }
        var heartbeat = UInt16(configuration.heartbeatSeconds)
        if tuneFields.heartbeat != 0 && tuneFields.heartbeat < heartbeat { heartbeat = tuneFields.heartbeat }
        amqp_maybe_release_buffers(state)

        try check(amqp_tune_connection(state, Int32(channelMax), Int32(frameMax), Int32(heartbeat)), "applying the tuned limits")
        var tuneOk = amqp_connection_tune_ok_t(channel_max: channelMax, frame_max: frameMax, heartbeat: heartbeat)
        try check(amqp_send_method(state, 0, AMQP_CONNECTION_TUNE_OK_METHOD, &tuneOk), "sending connection.tune-ok")

        let arena = CArena()
        var open = amqp_connection_open_t(
            virtual_host: arena.bytes(endpoint.vhost), capabilities: amqp_bytes_t(len: 0, bytes: nil), insist: 1)
        try withExtendedLifetime(arena) {
            try check(amqp_send_method(state, 0, AMQP_CONNECTION_OPEN_METHOD, &open), "sending connection.open")
        }
        _ = try waitForMethod(AMQP_CONNECTION_OPEN_OK_METHOD, "opening vhost '\(endpoint.vhost)'")
        return (Int(heartbeat), channelMax)
    }

    private func sendStartOk() throws {
        let arena = CArena()
        var capabilities: AMQPTable = [
            "authentication_failure_close": true,
            "exchange_exchange_bindings": true,
            "consumer_cancel_notify": true,
            "publisher_confirms": true,
            "basic.nack": true,
            "connection.blocked": true,
        ]
        capabilities["per_consumer_qos"] = true
        var properties: AMQPTable = [
            "product": "spotq AMQPClient",
            "platform": "Swift",
            "information": .string("rabbitmq-c \(String(cString: amqp_version()))"),
            "capabilities": .table(capabilities),
        ]
        if let name = configuration.connectionName { properties["connection_name"] = .string(name) }
        let response = [0] + Array(endpoint.user.utf8) + [0] + Array(endpoint.password.utf8)
        var startOk = amqp_connection_start_ok_t(
            client_properties: arena.table(properties),
            mechanism: arena.bytes("PLAIN"),
            response: arena.bytes(response),
            locale: arena.bytes("en_US"))
        try withExtendedLifetime(arena) {
            try check(amqp_send_method(state, 0, AMQP_CONNECTION_START_OK_METHOD, &startOk), "sending connection.start-ok")
        }
    }

    /// Waits for `expected` on channel 0; turns a `connection.close` into the broker's error.
    private func waitForMethod(_ expected: amqp_method_number_t, _ activity: String) throws -> amqp_method_t {
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { throw timeoutError(activity) }
            var timeout = timeval(remaining)
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame_noblock(state, &frame, &timeout)
            if status == AMQP_STATUS_TIMEOUT.rawValue { throw timeoutError(activity) }
            if status != AMQP_STATUS_OK.rawValue {
                let text = String(cString: amqp_error_string2(status))
                let message = sentCredentials
                    ? "the broker at \(endpoint.address) dropped the connection while \(activity) (\(text)); check the user name, password and vhost"
                    : "the connection to \(endpoint.address) failed while \(activity): \(text)"
                throw AMQPError(code: .connectionFailed, message: message)
            }
            guard Int32(frame.frame_type) == AMQP_FRAME_METHOD, frame.channel == 0 else { continue }
            let method = frame.payload.method
            if method.id == expected { return method }
            if method.id == AMQP_CONNECTION_CLOSE_METHOD {
                let close = method.decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                let code = Int(close.reply_code)
                let text = close.reply_text.string
                var ok = amqp_connection_close_ok_t()
                _ = amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
                if code == 403 {
                    throw AMQPError(
                        code: .authenticationFailed,
                        message: "the broker at \(endpoint.address) refused user '\(endpoint.user)': wrong user name or password",
                        replyCode: code, replyText: text)
                }
                throw AMQPError(
                    code: .connectionFailed,
                    message: "the broker at \(endpoint.address) refused the connection while \(activity)",
                    replyCode: code, replyText: text)
            }
            throw AMQPError(
                code: .protocolError,
                message: "unexpected method 0x\(String(method.id, radix: 16)) from \(endpoint.address) while \(activity)")
        }
    }

    private func timeoutError(_ activity: String) -> AMQPError {
        AMQPError(
            code: .timeout,
            message: "the broker at \(endpoint.address) did not complete the AMQP handshake within "
                + "\(configuration.handshakeTimeout) (stuck \(activity)); is it an AMQP 0-9-1 broker?")
    }

    private func check(_ status: Int32, _ activity: String) throws {
        guard status >= 0 else {
            throw AMQPError(
                code: .connectionFailed,
                message: "the connection to \(endpoint.address) failed while \(activity): \(String(cString: amqp_error_string2(status)))")
        }
    }
}
