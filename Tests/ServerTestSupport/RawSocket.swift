import Foundation
import Glibc
import SpotqTestSupport

/// A plain socket to the server, to stop in the middle of a request or send what an HTTP
/// client would not.
enum RawSocket {

    static func connect(port: Int) throws -> Int32 {
        try LoopbackSocket.connect(port: port)
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
