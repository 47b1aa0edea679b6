/// A token bucket that holds a download to a byte rate.
///
/// libcurl's own `CURLOPT_MAX_RECV_SPEED_LARGE` (also set) averages over windows of three
/// seconds or more and, in 7.88, lets the first megabytes of a transfer through unthrottled,
/// so a cap on a pod sharing its link would not hold for small files or bursts. The sink asks
/// this pacer after each chunk how long to wait; waiting inside libcurl's write callback stops
/// libcurl reading the socket, so TCP flow control slows the sender too. Pure: time is passed in.
struct ReceivePacer {
    let bytesPerSecond: Double
    /// The most that may arrive at once after an idle spell.
    let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    init(bytesPerSecond: Int, now: ContinuousClock.Instant) {
        self.bytesPerSecond = Double(bytesPerSecond)
        // A quarter second's worth, at most one libcurl write (16 KiB) beyond that.
        burst = max(1, min(Double(bytesPerSecond) / 4, 16 * 1024))
        tokens = burst
        last = now
    }

    /// Records `bytes` just received at `now`; returns how long to wait before taking more.
    mutating func delay(afterReceiving bytes: Int, now: ContinuousClock.Instant) -> Duration {
        let elapsed = now - last
        last = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        tokens = min(burst, tokens + seconds * bytesPerSecond) - Double(bytes)
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64((-tokens / bytesPerSecond * 1e9).rounded(.up)))
    }
}
