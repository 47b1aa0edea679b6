import Crypto
import Foundation

/// A broker user's password, made by spotq and never logged, and the form RabbitMQ stores.
public enum BrokerPassword {
    /// 192 random bits as hex: safe in an AMQP URL without percent-encoding.
    public static func generate() -> String { randomHex(bytes: 24) }

    /// RabbitMQ's `rabbit_password_hashing_sha256` hash: base64(salt ‖ SHA-256(salt ‖ password))
    /// with a 4-byte salt. Sending this instead of the password keeps the password out of the
    /// management API's requests and logs.
    public static func rabbitMQHash(_ password: String, salt: [UInt8]) -> String {
        precondition(salt.count == 4, "RabbitMQ's salt is 4 bytes")
        let digest = SHA256.hash(data: salt + Array(password.utf8))
        return Data(salt + Array(digest)).base64EncodedString()
    }

    public static func rabbitMQHash(_ password: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return rabbitMQHash(password, salt: (0..<4).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}
