import Crypto
import Foundation

/// A batch's upload token: what its pods present to fetch the manifest and upload results.
///
/// Derived as HMAC-SHA256(server secret, "spotq batch token v1:<batch id>"), so the planner
/// makes it when the batch is planned, the provisioner can hand it to each new pod later,
/// and the database keeps only its SHA-256 (a database dump reveals no token). Rotating the
/// secret revokes every token.
public enum BatchToken {
    /// Shortest accepted secret: 32 bytes of key material, written as at least 32 characters.
    public static let minimumSecretLength = 32

    public static func make(secret: String, batchID: Int64) -> String {
        let key = SymmetricKey(data: Data(secret.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data("spotq batch token v1:\(batchID)".utf8), using: key)
        return "sqb1_" + Data(mac).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// A pod's own upload token: random, minted per rental; only its ``hash(_:)`` is stored.
    public static func makePodToken() -> String { "sqp1_" + randomHex(bytes: 32) }

    /// What the database stores: SHA-256 of the token, lowercase hex.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public static func validateSecret(_ secret: String) throws(ConfigurationError) {
        guard secret.utf8.count >= minimumSecretLength else {
            throw ConfigurationError(message: "SPOTQ_SECRET must be at least \(minimumSecretLength) characters (e.g. `openssl rand -hex 32`)")
        }
    }
}
