import Crypto

/// The content of a stand-in model file: `size` bytes that depend only on the file name,
/// computable at any offset (so a server answers Range requests without storing anything)
/// and hashable in one pass (so the registry can hold their real SHA-256).
public struct DeterministicBytes: Sendable {
    public let filename: String
    public let size: Int64
    let seed: UInt64

    /// Bytes are produced in blocks of this many bytes, each from its own generator state.
    public static let blockSize = 65_536

    public init(filename: String, size: Int64) {
        self.filename = filename
        self.size = size
        let digest = Array(SHA256.hash(data: Array(filename.utf8)))
        seed = digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The bytes in `offset ..< offset + count` (clamped to the file).
    public func bytes(at offset: Int64, count: Int) -> [UInt8] {
        let end = min(size, offset + Int64(count))
        guard offset < end else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(Int(end - offset))
        var position = offset
        while position < end {
            let block = position / Int64(Self.blockSize)
            let blockStart = block * Int64(Self.blockSize)
            let blockBytes = self.block(block)
            let from = Int(position - blockStart)
            let to = Int(min(end - blockStart, Int64(blockBytes.count)))
            out += blockBytes[from..<to]
            position = blockStart + Int64(to)
        }
        return out
    }

    func block(_ index: Int64) -> [UInt8] {
        let start = index * Int64(Self.blockSize)
        let length = Int(min(Int64(Self.blockSize), size - start))
        var state = seed ^ (UInt64(bitPattern: index) &* 0x9E37_79B9_7F4A_7C15)
        // Whole 64-bit words stored little-endian (byte k is bits 8k…8k+7), then the tail:
        // fast enough that a debug-built devcloud serves hundreds of MB/s.
        return [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            let words = length / 8
            let raw = UnsafeMutableRawBufferPointer(buffer)
            for word in 0..<words {
                state &+= 0x9E37_79B9_7F4A_7C15
                raw.storeBytes(of: Self.mix(state).littleEndian, toByteOffset: word * 8, as: UInt64.self)
            }
            if words * 8 < length {
                state &+= 0x9E37_79B9_7F4A_7C15
                let z = Self.mix(state)
                for index in (words * 8)..<length {
                    buffer[index] = UInt8(truncatingIfNeeded: z >> UInt64((index - words * 8) * 8))
                }
            }
            initialized = length
        }
    }

    /// SplitMix64's output function.
    @inline(__always)
    public static func mix(_ state: UInt64) -> UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// SHA-256 of the whole file, lowercase hex.
    public func sha256() -> String {
        var hasher = SHA256()
        var offset: Int64 = 0
        while offset < size {
            let chunk = bytes(at: offset, count: 1 << 20)
            hasher.update(data: chunk)
            offset += Int64(chunk.count)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

import Foundation
