import Foundation

/// Deliveries of one consumer, handed from the connection thread to the iterating task.
///
/// The buffer is unbounded; `basic.qos` is what bounds it. When the application stops
/// consuming (cancel, iterator dropped, task cancelled), deliveries still buffered are handed
/// back to the connection thread, which rejects them with requeue after `basic.cancel`.
final class ConsumerBuffer: @unchecked Sendable {
    // `@unchecked Sendable`: every stored property below `lock` is only touched with it held,
    // except `cancelInBackground`, which is set once before the buffer is shared.
    private enum Ending {
        case finished
        case failed(AMQPError)
    }

    private let lock = NSLock()
    private var items: [AMQPDelivery] = []
    private var head = 0
    private var ending: Ending?
    private var waiter: CheckedContinuation<AMQPDelivery?, any Error>?
    private var cancelRequested = false
    private var consumerTag = ""
    /// Submits `basic.cancel` (when `sendCancel`) and the rejection of `leftovers`.
    var cancelInBackground: @Sendable (_ sendCancel: Bool, _ leftovers: [AMQPDelivery]) -> Void = { _, _ in }

    var tag: String {
        get { lock.withLock { consumerTag } }
        set { lock.withLock { consumerTag = newValue } }
    }

    /// Adds a delivery (connection thread). False when the consumer is stopping: the caller
    /// rejects the delivery with requeue.
    func push(_ delivery: AMQPDelivery) -> Bool {
        lock.lock()
        guard ending == nil else {
            lock.unlock()
            return false
        }
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: delivery)
        } else {
            items.append(delivery)
            lock.unlock()
        }
        return true
    }

    /// Ends the sequence (connection thread). With `dropBuffered`, deliveries not yet handed
    /// out are discarded (their channel is gone, so the broker has requeued them); otherwise
    /// they are still handed out before the end.
    func finish(_ error: AMQPError?, dropBuffered: Bool) {
        lock.lock()
        guard ending == nil else {
            lock.unlock()
            return
        }
        if dropBuffered {
            items = []
            head = 0
        }
        // A waiter exists only while the buffer is empty.
        let resumed = waiter
        waiter = nil
        ending = (resumed == nil) ? (error.map { .failed($0) } ?? .finished) : .finished
        lock.unlock()
        if let resumed {
            if let error { resumed.resume(throwing: error) } else { resumed.resume(returning: nil) }
        }
    }

    /// The application stops consuming. Runs at most once; ends the sequence normally.
    func requestCancel() {
        lock.lock()
        guard !cancelRequested else {
            lock.unlock()
            return
        }
        cancelRequested = true
        let leftovers = Array(items[head...])
        items = []
        head = 0
        let sendCancel = (ending == nil)
        if ending == nil { ending = .finished }
        let resumed = waiter
        waiter = nil
        let handler = cancelInBackground
        lock.unlock()
        resumed?.resume(returning: nil)
        if sendCancel || !leftovers.isEmpty { handler(sendCancel, leftovers) }
    }

    /// Up to `max` deliveries that already arrived, without waiting.
    func takeBuffered(max: Int) -> [AMQPDelivery] {
        lock.withLock {
            let end = min(items.count, head + Swift.max(0, max))
            let taken = Array(items[head..<end])
            head = end
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            }
            return taken
        }
    }

    /// The next delivery; nil once the consumer ended normally; throws the error it ended with
    /// (once), or `CancellationError` when the task is cancelled (which also cancels the consumer).
    func next() async throws -> AMQPDelivery? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<AMQPDelivery?, any Error>) in
                lock.lock()
                if head < items.count {
                    let delivery = items[head]
                    head += 1
                    if head == items.count {
                        items.removeAll(keepingCapacity: true)
                        head = 0
                    } else if head >= 64 && head * 2 >= items.count {
                        // A consumer that always lags a little never drains the buffer: compact.
                        items.removeFirst(head)
                        head = 0
                    }
                    lock.unlock()
                    continuation.resume(returning: delivery)
                    return
                }
                switch ending {
                case .finished?:
                    lock.unlock()
                    continuation.resume(returning: nil)
                case .failed(let error)?:
                    ending = .finished
                    lock.unlock()
                    continuation.resume(throwing: error)
                case nil:
                    if Task.isCancelled {
                        lock.unlock()
                        continuation.resume(throwing: CancellationError())
                        requestCancel()
                    } else {
                        waiter = continuation
                        lock.unlock()
                    }
                }
            }
        } onCancel: {
            let resumed: CheckedContinuation<AMQPDelivery?, any Error>? = lock.withLock {
                defer { waiter = nil }
                return waiter
            }
            resumed?.resume(throwing: CancellationError())
            requestCancel()
        }
    }
}
