/// Exponential backoff with jitter: `initial × multiplier^(failures−1)`, capped at `maximum`,
/// spread by ± `jitter` so many processes retrying the same server do not move in lockstep.
public struct RetryBackoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double
    /// 0.2 spreads each delay uniformly over ±20 %.
    public var jitter: Double

    public init(initial: Duration = .milliseconds(200), maximum: Duration = .seconds(10), multiplier: Double = 2, jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The wait after `failures` consecutive failures (zero before the first).
    public func delay(afterFailures failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        guard failures > 0 else { return .zero }
        let cap = Self.seconds(maximum)
        var base = Self.seconds(initial)
        for _ in 1..<min(failures, 64) where base < cap { base *= multiplier }
        let spread = max(0, min(jitter, 1))
        let factor = spread > 0 ? Double.random(in: (1 - spread)...(1 + spread), using: &generator) : 1
        return .milliseconds(Int64((min(cap, base) * factor * 1000).rounded()))
    }

    public func delay(afterFailures failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterFailures: failures, using: &generator)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
