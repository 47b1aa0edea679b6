import AMQPClient
import Foundation
import Logging
import SpotqBroker
import SpotqCore
import SpotqIngest

/// Consumes the batch's queue and turns each work message into a stored image.
struct WorkLoop: Sendable {
    let configuration: WorkerConfiguration
    let amqp: AMQPClient
    let comfy: ComfyClient
    let api: ServerAPI
    let availability: AssetAvailability
    let events: EventPublisher
    let notice: TerminationNotice
    let logger: Logger

    /// Header counting real failures of an item (reclaims never add to it).
    static let failuresHeader = "x-spotq-failures"

    enum Outcome: Sendable {
        case batchFinished
        case terminated(String)
    }

    /// Shared between the consuming loop and its watchers.
    actor State {
        var lastActivity = ContinuousClock.now
        var finished = false
        func touch() { lastActivity = .now }
        func finish() { finished = true }
    }

    func run() async throws -> Outcome {
        let queue = BrokerNames.batchQueue(configuration.batchID)
        while true {
            if let reason = await notice.reason { return .terminated(reason) }
            let state = State()
            let channel: AMQPChannel
            let consumer: AMQPConsumer
            do {
                channel = try await amqp.connection().openChannel()
                try await channel.qos(prefetchCount: UInt16(configuration.prefetch))
                consumer = try await channel.consume(queue: queue)
            } catch {
                if let finished = try await afterBrokerLoss(error) { return finished }
                continue
            }
            // Watchers end the consumer: a termination notice, or the batch being finished.
            let watchers = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        await notice.wait()
                        await consumer.cancel()
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: min(configuration.idleExit, .seconds(5)))
                            guard ContinuousClock.now - (await state.lastActivity) >= configuration.idleExit else { continue }
                            if await api.remaining() == 0 {
                                await state.finish()
                                await consumer.cancel()
                                return
                            }
                            await state.touch()
                        }
                    }
                    await group.next()
                    group.cancelAll()
                }
            }
            var waitFor: [String]? = nil
            do {
                for try await delivery in consumer {
                    await state.touch()
                    if let assets = try await handle(delivery, on: channel) {
                        waitFor = assets
                        await consumer.cancel()
                        break
                    }
                    await state.touch()
                }
            } catch {
                watchers.cancel()
                try? await channel.close()
                if await notice.isSet { continue }
                // The broker requeued whatever this channel held; an image stored meanwhile
                // whose ack was lost is generated again elsewhere and stored once (ingest is
                // idempotent).
                if let finished = try await afterBrokerLoss(error) { return finished }
                continue
            }
            watchers.cancel()
            _ = await watchers.value
            try? await channel.close()
            if await state.finished { return .batchFinished }
            if let assets = waitFor {
                // Hold nothing while the models download.
                while await availability.state(of: assets) == .pending, !(await notice.isSet) {
                    _ = await availability.wait(for: assets, limit: .seconds(30))
                }
            }
        }
    }

    /// After the broker connection or channel failed: rethrows what reconnecting cannot fix,
    /// returns `.batchFinished` when the server says no work is left (the batch queue may be
    /// gone), else nil to reconnect. `AMQPClient` spaces the reconnect attempts.
    func afterBrokerLoss(_ error: any Error) async throws -> Outcome? {
        if error is CancellationError { throw error }
        if let amqp = error as? AMQPError, [.authenticationFailed, .invalidURL, .closed, .invalidArgument].contains(amqp.code) { throw error }
        logger.warning("worker: lost the broker; reconnecting", metadata: ["error": "\(error)"])
        if await api.remaining() == 0 { return .batchFinished }
        try await Task.sleep(for: .milliseconds(200))
        return nil
    }

    /// Handles one delivery. Returns the models it waited for in vain (the delivery was
    /// handed back), or nil when the delivery was settled.
    func handle(_ delivery: AMQPDelivery, on channel: AMQPChannel) async throws -> [String]? {
        if await notice.isSet {
            try await delivery.nack(requeue: true)
            return nil
        }
        let item: WorkItem
        do {
            item = try WorkItem(body: delivery.body)
        } catch {
            try await deadLetter(delivery, reason: "\(error)", on: channel)
            return nil
        }
        let assets = [item.checkpoint] + item.loras
        switch await availability.wait(for: assets, limit: configuration.assetWait) {
        case .pending:
            try await delivery.nack(requeue: true)
            return assets
        case .failed(let reason):
            await events.publish(.imageFailed, item: item.itemID, detail: ["reason": .string(reason), "final": .bool(true)])
            try await deadLetter(delivery, reason: reason, on: channel)
            return nil
        case .ready:
            break
        }
        await events.publish(.imageStarted, item: item.itemID)
        let result = await generateAndUpload(item)
        logger.debug("worker: item attempted", metadata: ["item": "\(item.itemID)", "result": "\(result)"])
        switch result {
        case .stored:
            try await delivery.ack()
            await events.publish(.imageDone, item: item.itemID)
        case .refused(let reason):
            await events.publish(.imageFailed, item: item.itemID, detail: ["reason": .string(reason), "final": .bool(true)])
            try await deadLetter(delivery, reason: reason, on: channel)
        case .failed(let reason):
            let failures = Int(delivery.properties.headers?[Self.failuresHeader]?.intValue ?? 0) + 1
            if failures >= configuration.maxFailures {
                let final = "failed \(failures) times; last: \(reason)"
                await events.publish(.imageFailed, item: item.itemID, detail: ["reason": .string(final), "final": .bool(true)])
                try await deadLetter(delivery, reason: final, on: channel)
            } else {
                // A copy with the count goes to the back of the queue; then the original is acked.
                var properties = delivery.properties
                var headers = properties.headers ?? AMQPTable()
                headers[Self.failuresHeader] = .int64(Int64(failures))
                properties.headers = headers
                try await channel.publish(AMQPOutgoingMessage(exchange: BrokerNames.workExchange, routingKey: delivery.routingKey, body: delivery.body, properties: properties, mandatory: true))
                try await delivery.ack()
                await events.publish(.imageFailed, item: item.itemID, detail: ["reason": .string(reason), "final": .bool(false)])
            }
        case .interrupted:
            // Handed back first: the pod may be killed any moment now.
            try await delivery.nack(requeue: true)
            let after = await notice.millisecondsSinceNotice()
            logger.info("worker: handed back the image in progress", metadata: ["item": "\(item.itemID)", "handed_back_after_ms": "\(after)"])
            _ = try? await comfy.http.send(.init(method: .post, url: configuration.comfyURL + "/interrupt", timeout: .seconds(1)))
            await events.publish(.imageInterrupted, item: item.itemID)
        }
        return nil
    }

    enum ItemResult: Sendable {
        case stored
        /// The same attempt can never succeed (ComfyUI refused the workflow, the server refused the bundle).
        case refused(String)
        /// This attempt failed; another may not.
        case failed(String)
        /// A termination deadline came first.
        case interrupted
    }

    /// Generates and uploads, racing the termination deadline. At the deadline the answer is
    /// `.interrupted` at once; the attempt is cancelled and winds down on its own (waiting for
    /// it could take a second of libcurl noticing, which a pod about to be killed does not have).
    func generateAndUpload(_ item: WorkItem) async -> ItemResult {
        let race = FirstResult<ItemResult>()
        let attempt = Task { await race.offer(await self.attempt(item)) }
        let deadline = Task {
            await notice.wait()
            guard !Task.isCancelled else { return }
            if let left = await notice.remaining(), left > .zero { try? await Task.sleep(for: left) }
            guard !Task.isCancelled else { return }
            await race.offer(.interrupted)
        }
        let result = await race.value()
        attempt.cancel()
        deadline.cancel()
        return result
    }

    func attempt(_ item: WorkItem) async -> ItemResult {
        let images: [ComfyClient.Image]
        do {
            let promptID = try await comfy.submit(workflowJSON: item.workflowJSON, promptID: UUID().uuidString.lowercased())
            images = try await comfy.waitForImages(promptID: promptID, limit: configuration.generationTimeout)
        } catch let refused as ComfyClient.Refused {
            return .refused(refused.description)
        } catch is CancellationError {
            return .interrupted
        } catch {
            return .failed("\(error)")
        }
        let bundle: Data
        do {
            // Each file named for its item, so a bundle never collides with another's.
            let named = images.enumerated().map { index, image in
                BundleWriter.Image(filename: "\(item.itemID)_\(String(format: "%04d", index + 1)).\(Self.fileExtension(image.data))", data: image.data)
            }
            bundle = try BundleWriter.make(item: BundleQueueRow(id: item.itemID, requestID: item.requestID, batchID: item.batchID), images: named)
        } catch {
            return .failed("could not build the result bundle: \(error)")
        }
        do {
            switch try await api.upload(bundle, notice: notice) {
            case .stored: return .stored
            case .refused(let reason): return .refused(reason)
            }
        } catch {
            return .interrupted
        }
    }

    static func fileExtension(_ data: Data) -> String {
        switch ImageMagic.contentType(of: data) {
        case "image/jpeg": "jpg"
        case "image/webp": "webp"
        default: "png"
        }
    }

    func deadLetter(_ delivery: AMQPDelivery, reason: String, on channel: AMQPChannel) async throws {
        logger.warning("worker: dead-lettered a work message", metadata: ["reason": "\(reason)"])
        try await channel.publish(AMQPOutgoingMessage.deadLetter(
            of: delivery, queue: BrokerNames.batchQueue(configuration.batchID), exchange: BrokerNames.deadLetterExchange, reason: reason))
        try await delivery.ack()
    }
}

/// The first of several offered values; later offers are ignored.
actor FirstResult<Value: Sendable> {
    private var result: Value?
    private var waiters: [CheckedContinuation<Value, Never>] = []

    func offer(_ value: Value) {
        guard result == nil else { return }
        result = value
        for waiter in waiters { waiter.resume(returning: value) }
        waiters = []
    }

    func value() async -> Value {
        if let result { return result }
        return await withCheckedContinuation { waiters.append($0) }
    }
}
