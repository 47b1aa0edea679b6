import Foundation
import Synchronization

/// SIGTERM and SIGINT for a process that handles them itself (a supervisor, devcloud): the
/// default action is turned off, and each signal calls `handler` and wakes the waits below.
public final class TerminationSignals: @unchecked Sendable {
    // Made in init and kept as long as this object; the signals' handlers run on them.
    private var sources: [any DispatchSourceSignal] = []
    private let state = Mutex<(arrived: Bool, waiters: [UUID: CheckedContinuation<Void, Never>])>((false, [:]))

    public init(handler: @escaping @Sendable (Int32) -> Void = { _ in }) {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                handler(number)
                let waiters = state.withLock { state in
                    state.arrived = true
                    defer { state.waiters = [:] }
                    return Array(state.waiters.values)
                }
                for waiter in waiters { waiter.resume() }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Whether a signal came.
    public var hasArrived: Bool { state.withLock { $0.arrived } }

    /// Returns once a signal came (at once if one came before), or when the calling task is
    /// cancelled.
    public func wait() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.arrived || Task.isCancelled { return true }
                    state.waiters[id] = waiter
                    return false
                }
                if now { waiter.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Waits `delay`, or less if a signal comes; true when one came (now or before).
    public func wait(upTo delay: Duration) async -> Bool {
        if hasArrived { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.wait()
                return self.hasArrived
            }
            group.addTask {
                try? await Task.sleep(for: delay)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || self.hasArrived
        }
    }
}
