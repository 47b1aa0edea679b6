import Foundation

/// A progress line on stderr: redrawn in place on a terminal (at most 10 times a second),
/// a plain line every 10 % otherwise, so logs and CI output stay readable.
final class ProgressLine: @unchecked Sendable {
    // Every access holds `lock`; the progress callbacks come from several tasks.
    private let lock = NSLock()
    private let total: Int
    private let label: String
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let started = ContinuousClock.now
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var lastTenth = -1
    private var drewInPlace = false

    init(label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
    }

    func update(done: Int, detail: String) {
        lock.withLock {
            let now = ContinuousClock.now
            if isTerminal {
                guard now - lastDraw >= .milliseconds(100) || done >= total else { return }
                lastDraw = now
                let width = 30
                let filled = min(width, done * width / total)
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                write("\r\u{1B}[2K\(label) [\(bar)] \(done)/\(total)  \(detail)  \(rate(done, now))")
                drewInPlace = true
            } else {
                let tenth = min(10, done * 10 / total)
                guard tenth > lastTenth else { return }
                lastTenth = tenth
                write("\(label): \(done)/\(total) (\(tenth * 10) %)  \(detail)  \(rate(done, now))\n")
            }
        }
    }

    /// Ends the in-place line so what follows starts on a new one.
    func finish() {
        lock.withLock {
            if drewInPlace { write("\n") }
            drewInPlace = false
        }
    }

    private func rate(_ done: Int, _ now: ContinuousClock.Instant) -> String {
        let seconds = Double((now - started).components.seconds) + Double((now - started).components.attoseconds) / 1e18
        return seconds > 0.5 ? "\(Int(Double(done) / seconds))/s" : ""
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
