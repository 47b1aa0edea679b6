/// How long ``AMQPClient`` waits before trying again after failed connection attempts:
/// exponential backoff from `initialDelay`, capped at `maximumDelay`, with ± `jitter`
/// (a fraction) so many clients do not retry in lockstep.
public struct AMQPReconnectPolicy: Sendable, Hashable {
    public var initialDelay: Duration
    public var maximumDelay: Duration
    public var multiplier: Double
    /// 0.2 spreads each delay uniformly over ±20 %.
    public var jitter: Double

    public init(
        initialDelay: Duration = .milliseconds(250), maximumDelay: Duration = .seconds(30),
        multiplier: Double = 2, jitter: Double = 0.2
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The wait before the next attempt after `failures` consecutive failed ones (0: none).
    public func delay(afterFailures failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        guard failures > 0 else { return .zero }
        let initial = Self.seconds(initialDelay)
        let maximum = Self.seconds(maximumDelay)
        let exponent = Double(min(failures - 1, 62))
        let base = min(maximum, initial * pow(multiplier, exponent))
        let spread = max(0, min(jitter, 1))
        let factor = spread > 0 ? Double.random(in: (1 - spread)...(1 + spread), using: &generator) : 1
        return .milliseconds(Int64((min(maximum, base * factor) * 1000).rounded()))
    }

    public func delay(afterFailures failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterFailures: failures, using: &generator)
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 {
        result *= base
        remaining -= 1
        if result > 1e12 { break }
    }
    return result
}
