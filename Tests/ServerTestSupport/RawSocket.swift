import Foundation
import Glibc
import SpotqTestSupport

/// A plain socket to the server, to stop in the middle of a request or send what an HTTP
/// client would not.
enum RawSocket {

    static func connect(port: Int) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(descriptor)
            throw TestEnvironmentError(description: "could not connect to 127.0.0.1:\(port)")
        }
        return descriptor
    }

    static func send(_ descriptor: Int32, _ data: Data) throws {
        try data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.send(descriptor, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                guard written > 0 else { throw TestEnvironmentError(description: "send failed") }
                offset += written
            }
        }
    }

    /// Sends a whole request and returns the whole answer (the server closes the connection).
    static func rawRequest(port: Int, _ head: String, body: Data = Data()) throws -> String {
        let descriptor = try connect(port: port)
        defer { close(descriptor) }
        try send(descriptor, Data(head.utf8) + body)
        return receiveAll(descriptor)
    }

    /// Everything the server sends until it closes the connection.
    static func receiveAll(_ descriptor: Int32) -> String {
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
