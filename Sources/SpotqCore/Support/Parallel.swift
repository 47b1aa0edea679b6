import Dispatch

/// Runs independent pure work on every core: planning a big backlog is per checkpoint and
/// per batch, with nothing shared but read-only input.
enum Parallel {
    /// Result slots; each iteration writes only its own, so access never overlaps.
    private struct Slots<T>: @unchecked Sendable {
        let base: UnsafeMutablePointer<T?>
    }

    /// `body(0) … body(count - 1)`, concurrently; results in index order.
    static func map<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
        guard count > 1 else { return (0..<count).map(body) }
        var results = [T?](repeating: nil, count: count)
        results.withUnsafeMutableBufferPointer { buffer in
            let slots = Slots(base: buffer.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: count) { index in
                slots.base[index] = body(index)
            }
        }
        return results.map { $0! }
    }
}
