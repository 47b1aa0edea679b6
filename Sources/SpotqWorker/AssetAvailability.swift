/// Which of the batch's models are on disk, failed for good, or still coming; deliveries
/// wait here (for a bounded time) for the models their image needs.
actor AssetAvailability {
    enum State: Sendable, Equatable { case pending, ready, failed(String) }

    private var states: [String: State] = [:]
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ filenames: [String]) {
        for name in filenames { states[name] = .pending }
    }

    func markReady(_ filename: String) { set(filename, .ready) }
    func markFailed(_ filename: String, reason: String) { set(filename, .failed(reason)) }

    private func set(_ filename: String, _ state: State) {
        states[filename] = state
        let resumed = waiters
        waiters = []
        for waiter in resumed { waiter.resume() }
    }

    /// Ready when every model is on disk; failed with the first failed one's reason; else pending.
    func state(of filenames: [String]) -> State {
        for name in filenames {
            switch states[name] {
            case .failed(let reason)?: return .failed("model \(name) is unavailable: \(reason)")
            case nil: return .failed("model \(name) is not in the batch's manifest")
            default: continue
            }
        }
        return filenames.allSatisfy { states[$0] == .ready } ? .ready : .pending
    }

    /// Waits until `filenames` are ready or one failed, or `limit` passed; returns the state then.
    func wait(for filenames: [String], limit: Duration) async -> State {
        let deadline = ContinuousClock.now + limit
        while true {
            let current = state(of: filenames)
            guard current == .pending, ContinuousClock.now < deadline else { return current }
            await withCheckedContinuation { continuation in
                waiters.append(continuation)
                Task { [weak self] in
                    try? await Task.sleep(for: min(.seconds(1), deadline - ContinuousClock.now))
                    await self?.wakeAll()
                }
            }
        }
    }

    private func wakeAll() {
        let resumed = waiters
        waiters = []
        for waiter in resumed { waiter.resume() }
    }
}
