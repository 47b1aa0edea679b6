import Foundation

/// A test's in-process server that can be stopped (its port refusing connections) and
/// started again on the same port, as when a service dies and comes back. It knows nothing
/// of the server itself: `makeServer` gets a port and a callback to call once listening, and
/// returns the function that runs the server until cancelled.
public actor RestartableListener {
    public typealias Run = @Sendable () async throws -> Void
    let name: String
    let makeServer: @Sendable (_ port: Int, _ listening: @escaping @Sendable (Int) async -> Void) -> Run
    private var running: Task<Void, any Error>?
    private var port = 0
    /// Holds the port while the server is down, so nothing else takes it meanwhile.
    private var hold: PortHold?

    public init(name: String, makeServer: @escaping @Sendable (_ port: Int, _ listening: @escaping @Sendable (Int) async -> Void) -> Run) {
        self.name = name
        self.makeServer = makeServer
    }

    /// Starts the server and returns its port. The first start takes a free port below the
    /// ephemeral range (another, if that one is taken before the server binds it); a restart
    /// binds the earlier port again, retried for a while (the old listener may still be closing).
    public func start() async throws -> Int {
        guard running == nil else { return port }
        let firstStart = port == 0
        if firstStart { port = try FreePort.find() }
        hold = nil
        for _ in 0..<300 {
            let (bound, sink) = AsyncStream.makeStream(of: Int.self)
            let run = makeServer(port) { sink.yield($0) }
            // A failed bind ends the stream instead of leaving the wait below hanging.
            let task = Task {
                defer { sink.finish() }
                try await run()
            }
            var listening = false
            for await _ in bound {
                listening = true
                break
            }
            if listening {
                running = task
                return port
            }
            if firstStart { port = try FreePort.find() }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestEnvironmentError(description: "\(name) could not listen on port \(port)")
    }

    /// Stops the server and returns once its port refuses connections (NIO may close the
    /// listening socket after the application's task has ended). The port is held from the
    /// moment the listener is gone: the hold can be bound only then, so there is no gap in
    /// which another test's free-port check could find it free.
    public func stop() async {
        running?.cancel()
        _ = try? await running?.value
        running = nil
        let port = self.port
        hold = try? await eventually("port \(port) refusing connections", timeout: .seconds(30)) { PortHold(port: port) }
    }
}

/// A socket bound to a stopped server's port but not listening: connections to it are still
/// refused, and nothing else (another test's free port, a devcloud pod's ComfyUI) can take
/// the port before the server listens there again. It binds only once no socket listens on
/// the port (Linux refuses a bind beside a listener, SO_REUSEADDR or not).
final class PortHold: Sendable {
    let descriptor: Int32

    init?(port: Int) {
        // Past the server's own connections in TIME_WAIT; a bind without it (a free-port
        // check) still fails.
        guard let descriptor = LoopbackSocket.bound(port: port, reuseAddress: true) else { return nil }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}

/// TCP sockets on 127.0.0.1.
public enum LoopbackSocket {
    /// A socket bound to `port` (not listening), or nil if the port cannot be bound.
    public static func bound(port: Int, reuseAddress: Bool) -> Int32? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        if reuseAddress {
            var yes: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = address(port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard bound else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    /// A socket connected to `port`.
    public static func connect(port: Int) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = address(port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(descriptor)
            throw TestEnvironmentError(description: "could not connect to 127.0.0.1:\(port)")
        }
        return descriptor
    }

    static func address(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
