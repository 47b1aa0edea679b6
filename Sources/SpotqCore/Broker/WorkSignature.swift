import Crypto
import Foundation

/// The planner's signature on each work message (Ed25519, the key derived from SPOTQ_SECRET),
/// so a pod renders only work the planner made. A batch's pods may publish into its queue
/// (their retries, through `spotq.pod.retry`), and a replay sends a dead letter back, but
/// neither can sign: a retry or replay keeps the original body and its signature.
///
/// The signature covers the batch queue's name and the body, so signed work for one batch
/// is refused in another. Pods get only the public keys that signed their batch
/// (SPOTQ_WORK_PUBLIC_KEY, recorded per batch by the publisher), not a secret: rotating
/// SPOTQ_SECRET changes the key of new batches only.
public enum WorkSignature {
    /// The header carrying the base64 signature.
    public static let header = "x-spotq-signature"
    /// What the reason of a dead letter of unsigned or wrongly signed work starts with.
    public static let refusalPrefix = "forged work:"

    static func signedBytes(queue: String, body: [UInt8]) -> [UInt8] { Array(queue.utf8) + [0x0a] + body }

    /// Signs work messages; made once from the secret.
    public struct Signer: Sendable {
        /// The Ed25519 seed (swift-crypto's key types are not Sendable; the key is made from it when used).
        let seed: [UInt8]

        public init(secret: String) {
            seed = Array(SHA256.hash(data: Array("spotq work signing v1\u{0}".utf8) + Array(secret.utf8)))
        }

        // A 32-byte seed is always a valid Ed25519 private key.
        var key: Curve25519.Signing.PrivateKey { try! Curve25519.Signing.PrivateKey(rawRepresentation: seed) }

        /// The public key pods verify with, base64.
        public var publicKey: String { key.publicKey.rawRepresentation.base64EncodedString() }

        public func signature(queue: String, body: [UInt8]) -> String {
            signatures(queue: queue, bodies: [body])[0]
        }

        /// One signature per body, with the key made once (the planner signs a chunk at a time).
        public func signatures(queue: String, bodies: [[UInt8]]) -> [String] {
            let key = self.key
            // Only fails on a broken platform RNG/crypto; there is no message to send then.
            return bodies.map { (try! key.signature(for: WorkSignature.signedBytes(queue: queue, body: $0))).base64EncodedString() }
        }
    }

    /// Checks work messages on a pod, against the keys that signed its batch (one, or two
    /// when the secret was rotated while the batch was being published).
    public struct Verifier: Sendable {
        let raws: [Data]

        /// `publicKeys`: base64 Ed25519 public keys, comma-separated (SPOTQ_WORK_PUBLIC_KEY);
        /// nil when any is not one, or there is none.
        public init?(publicKeys: String) {
            var raws: [Data] = []
            for text in publicKeys.split(separator: ",") {
                guard let raw = Data(base64Encoded: String(text.trimmingCharacters(in: .whitespaces))),
                      (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil else { return nil }
                raws.append(raw)
            }
            guard !raws.isEmpty else { return nil }
            self.raws = raws
        }

        /// nil when the message was signed by the planner for `queue`; else why not.
        public func refusal(queue: String, body: [UInt8], signature: String?) -> String? {
            guard let signature, !signature.isEmpty else { return "\(WorkSignature.refusalPrefix) it carries no planner's signature (\(WorkSignature.header))" }
            let signed = WorkSignature.signedBytes(queue: queue, body: body)
            guard let bytes = Data(base64Encoded: signature),
                  raws.contains(where: { (try? Curve25519.Signing.PublicKey(rawRepresentation: $0))?.isValidSignature(bytes, for: signed) == true })
            else {
                return "\(WorkSignature.refusalPrefix) its signature is not the planner's for \(queue)"
            }
            return nil
        }
    }
}
