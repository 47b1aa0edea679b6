import Foundation

/// Which of the batch's models are on disk, failed for good, or still coming. Deliveries wait
/// here for the models their image needs: a waiter is resumed by ``markReady(_:)`` or
/// ``markFailed(_:reason:)`` the moment its models are settled, or by its own deadline.
final class AssetAvailability: Sendable {
    private struct Waiter {
        var filenames: [String]
        var continuation: CheckedContinuation<ModelAvailability, Never>
    }

    private struct Models {
        var states: [String: ModelAvailability] = [:]
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0

        /// Ready when every model is on disk; failed with the first failed one's reason; else pending.
        func state(of filenames: [String]) -> ModelAvailability {
            for name in filenames {
                switch states[name] {
                case .failed(let reason)?: return .failed("model \(name) is unavailable: \(reason)")
                case nil: return .failed("model \(name) is not in the batch's manifest")
                default: continue
                }
            }
            return filenames.allSatisfy { states[$0] == .ready } ? .ready : .pending
        }
    }

    private let models: Locked<Models>

    init(_ filenames: [String]) {
        var models = Models()
        for name in filenames { models.states[name] = .pending }
        self.models = Locked(models)
    }

    func markReady(_ filename: String) { set(filename, .ready) }
    func markFailed(_ filename: String, reason: String) { set(filename, .failed(reason)) }

    private func set(_ filename: String, _ state: ModelAvailability) {
        let settled = models.withLock { models in
            models.states[filename] = state
            var settled: [(CheckedContinuation<ModelAvailability, Never>, ModelAvailability)] = []
            for (id, waiter) in models.waiters {
                let now = models.state(of: waiter.filenames)
                guard now != .pending else { continue }
                settled.append((waiter.continuation, now))
                models.waiters[id] = nil
            }
            return settled
        }
        for (continuation, state) in settled { continuation.resume(returning: state) }
    }

    func state(of filenames: [String]) -> ModelAvailability {
        models.withLock { $0.state(of: filenames) }
    }

    /// Waits until `filenames` are ready or one failed, or `limit` passed (or the task is
    /// cancelled); returns their state then.
    func wait(for filenames: [String], limit: Duration) async -> ModelAvailability {
        await withTaskGroup(of: ModelAvailability?.self) { group in
            group.addTask { await self.settled(filenames) }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? state(of: filenames)
        }
    }

    /// Returns once `filenames` are ready or one failed; `.pending` when the task is cancelled first.
    func settled(_ filenames: [String]) async -> ModelAvailability {
        let id = models.withLock { models in
            defer { models.nextWaiter += 1 }
            return models.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ModelAvailability, Never>) in
                let now: ModelAvailability? = models.withLock { models in
                    let now = models.state(of: filenames)
                    if now != .pending || Task.isCancelled { return now }
                    models.waiters[id] = Waiter(filenames: filenames, continuation: continuation)
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = models.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.continuation.resume(returning: .pending)
        }
    }
}
