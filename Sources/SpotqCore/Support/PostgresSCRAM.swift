import Crypto
import Foundation

/// PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802, RFC 7677):
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. `spotq db-users` sends this,
/// never the password, so the password is in no statement PostgreSQL could log.
public enum PostgresSCRAM {
    /// PostgreSQL's default (`scram_iterations`).
    public static let defaultIterations = 4096

    /// The verifier for `password` with a fresh 16-byte salt.
    public static func verifier(password: String, iterations: Int = defaultIterations) -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return verifier(password: password, salt: salt, iterations: iterations)
    }

    /// The verifier for `password` (ASCII: spotq's generated passwords are hex, which SASLprep
    /// leaves as it is) with `salt`.
    public static func verifier(password: String, salt: [UInt8], iterations: Int) -> String {
        let salted = saltedPassword(Array(password.utf8), salt: salt, iterations: iterations)
        let key = SymmetricKey(data: salted)
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: key))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: key))
        func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
        return "SCRAM-SHA-256$\(iterations):\(base64(salt))$\(base64(storedKey)):\(base64(serverKey))"
    }

    /// Hi(password, salt, i): PBKDF2 with HMAC-SHA-256, one block (RFC 5802 §2.2).
    static func saltedPassword(_ password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var block = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = block
        for _ in 1..<max(1, iterations) {
            block = Array(HMAC<SHA256>.authenticationCode(for: block, using: key))
            for index in result.indices { result[index] ^= block[index] }
        }
        return result
    }
}
