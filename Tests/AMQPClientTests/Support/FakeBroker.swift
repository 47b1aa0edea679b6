import Foundation

/// A TCP listener on 127.0.0.1 that plays a fixed part, for failures a real broker will not
/// produce on demand: it either says nothing at all, or completes the AMQP handshake (with
/// the heartbeat it is told) and then goes silent, like a hung or unplugged broker.
final class FakeBroker: @unchecked Sendable {
    // `@unchecked Sendable`: `accepted`, `stopped` and `methods` are only touched with `lock` held; the rest
    // is immutable. Descriptors are closed only by the accepting thread, after every reader ended.
    enum Behaviour {
        case silent
        case handshakeThenSilence(heartbeat: UInt16)
        /// Also answers `channel.open` and `confirm.select`, then never confirms a publish.
        case opensChannelsButNeverConfirms
    }

    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var accepted: [Int32] = []
    private let readers = DispatchGroup()
    private var stopped = false
    private var methods: [[UInt8]] = []

    /// The methods (class id and method id, 4 bytes) clients sent after the handshake's
    /// header, in order: a test waits on these instead of waiting a while.
    var receivedMethods: [[UInt8]] { lock.withLock { methods } }

    init(_ behaviour: Behaviour) throws {
        let (fd, port) = try Self.listen()
        listener = fd
        self.port = port
        let script: [UInt8]
        var answersChannelSetup = false
        switch behaviour {
        case .silent: script = []
        case .handshakeThenSilence(let heartbeat): script = Self.handshake(heartbeat: heartbeat)
        case .opensChannelsButNeverConfirms:
            script = Self.handshake(heartbeat: 0)
            answersChannelSetup = true
        }
        let answers = answersChannelSetup
        // Only this thread closes the descriptors, so none is used after being reused.
        let thread = Thread { [self] in
            var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while !lock.withLock({ stopped }) {
                pollFD.revents = 0
                guard poll(&pollFD, 1, 50) > 0 else { continue }
                let client = accept(fd, nil, nil)
                guard client >= 0 else { continue }
                lock.withLock { accepted.append(client) }
                if !script.isEmpty { _ = script.withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) } }
                let readers = self.readers
                readers.enter()
                Thread { [self] in
                    Self.read(client, answeringChannelSetup: answers) { method in lock.withLock { methods.append(method) } }
                    readers.leave()
                }.start()
            }
            readers.wait()  // stop() shut the sockets down, so every reader has returned
            close(fd)
            for client in lock.withLock({ accepted }) { close(client) }
        }
        thread.start()
    }

    /// Stops accepting and hangs up on every client (they see the connection close).
    func stop() {
        lock.withLock {
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for client in accepted { shutdown(client, Int32(SHUT_RDWR)) }
        }
    }

    /// A port on 127.0.0.1 that nothing listens on (bound, then released).
    static func closedPort() throws -> Int {
        let (fd, port) = try listen()
        close(fd)
        return port
    }

    private static func listen() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, Glibc.listen(fd, 8) == 0 else {
            close(fd)
            throw TestSetupError(description: "fake broker: bind/listen on 127.0.0.1 failed")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// connection.start, connection.tune and connection.open-ok, sent up front: the client
    /// reads each when it gets there.
    private static func handshake(heartbeat: UInt16) -> [UInt8] {
        var start: [UInt8] = [0, 10, 0, 10, 0, 9]  // connection.start, version 0-9
        start += [0, 0, 0, 0]  // server properties: empty table
        start += longString("PLAIN") + longString("en_US")
        var tune: [UInt8] = [0, 10, 0, 30]
        tune += [0x07, 0xFF] + [0, 2, 0, 0] + [UInt8(heartbeat >> 8), UInt8(heartbeat & 0xFF)]
        let openOk: [UInt8] = [0, 10, 0, 41, 0]
        return method(start) + method(tune) + method(openOk)
    }

    /// Reads the client's frames and answers `channel.open` and `confirm.select` until the
    /// connection ends.
    /// Reads the client's frames until it hangs up, recording each method; answers
    /// channel.open and confirm.select when asked to.
    private static func read(_ client: Int32, answeringChannelSetup answers: Bool, record: (_ method: [UInt8]) -> Void) {
        func read(_ count: Int) -> [UInt8]? {
            var buffer = [UInt8](repeating: 0, count: count)
            var filled = 0
            while filled < count {
                let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress! + filled, count - filled, 0) }
                guard n > 0 else { return nil }
                filled += n
            }
            return buffer
        }
        guard read(8) != nil else { return }  // protocol header
        while let header = read(7) {
            let channel = UInt16(header[1]) << 8 | UInt16(header[2])
            let size = header[3...6].reduce(0) { $0 << 8 | Int($1) }
            guard let payload = read(size + 1) else { return }
            guard header[0] == 1, payload.count >= 4 else { continue }
            let method = Array(payload[0..<4])
            record(method)
            guard answers else { continue }
            var reply: [UInt8]?
            if method == [0, 20, 0, 10] { reply = [0, 20, 0, 11] + bigEndian(0) }  // channel.open-ok
            if method == [0, 85, 0, 10] { reply = [0, 85, 0, 11] }  // confirm.select-ok
            if let reply {
                let frame = Self.method(reply, channel: channel)
                _ = frame.withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) }
            }
        }
    }

    private static func longString(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        return bigEndian(UInt32(bytes.count)) + bytes
    }

    private static func method(_ payload: [UInt8], channel: UInt16 = 0) -> [UInt8] {
        [1, UInt8(channel >> 8), UInt8(channel & 0xFF)] + bigEndian(UInt32(payload.count)) + payload + [0xCE]
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
