import Crypto
import Foundation

/// What a pod runs, as the server serves it and the provisioner pins it: the bootstrap
/// script (built into spotq) and the spotq binary (the running executable unless
/// SPOTQ_POD_BINARY names another build), each with its SHA-256. The provisioner computes
/// both hashes from its own copies and gives them to the pod, so a server (or anyone in
/// between) serving other bytes is refused by the pod, not trusted.
public enum PodSoftware {
    /// `Sources/SpotqPod/bootstrap.sh`, embedded at build time.
    public static let bootstrapScript: [UInt8] = PackageResources.bootstrap_sh

    public static let bootstrapSHA256: String = hex(SHA256.hash(data: bootstrapScript))

    /// The binary pods get: SPOTQ_POD_BINARY, else this process's own executable.
    public static func binaryPath(environment: [String: String]) -> String {
        if let path = environment["SPOTQ_POD_BINARY"], !path.isEmpty { return path }
        return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    }

    /// The SHA-256 of a file, read in 1 MiB blocks (a release build is about 100 MB).
    public static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PodSoftwareError(description: "cannot read the pod binary \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty { hasher.update(data: block) }
        return hex(hasher.finalize())
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

public struct PodSoftwareError: Error, CustomStringConvertible {
    public var description: String
}
