import AMQPClient
import Foundation
import Logging
import SpotqCore
import SpotqStore

/// What a bulk enqueue reports as it goes.
public typealias EnqueueProgress = @Sendable (_ summary: EnqueueSummary, _ published: Int) -> Void

/// Bulk enqueue straight into PostgreSQL: the path `spotq enqueue --via sql` takes.
/// Lines are checked like AMQP messages, then written `chunkSize` per transaction.
public struct SQLBulkEnqueuer: Sendable {
    public let store: QueueStore
    public var validator = EnqueueMessageValidator()
    public var chunkSize = 500

    public init(store: QueueStore) {
        self.store = store
    }

    public func run(_ lines: [EnqueueLine], progress: EnqueueProgress = { _, _ in }) async throws -> EnqueueSummary {
        var summary = EnqueueSummary()
        var start = 0
        while start < lines.count {
            let chunk = lines[start..<min(lines.count, start + chunkSize)]
            start += chunk.count
            var valid: [(line: Int, message: EnqueueMessage)] = []
            for line in chunk {
                switch validator.validate(body: line.body) {
                case .success(let message): valid.append((line.number, message))
                case .failure(let rejection): summary.record(.rejected(reason: rejection.reason), place: line.number)
                }
            }
            let outcomes = try await store.insert(valid.map(\.message))
            for (entry, outcome) in zip(valid, outcomes) { summary.record(outcome, place: entry.line) }
            progress(summary, start)
        }
        return summary
    }
}

/// Bulk enqueue through RabbitMQ, as a website would: each line is published to
/// `spotq.enqueue` with publisher confirms and a `reply_to` queue of its own, and the
/// server's answers (accepted, duplicate, rejected with reason) make the summary.
public struct AMQPBulkEnqueuer: Sendable {
    public let connection: AMQPConnection
    public var exchange = BrokerNames.enqueueExchange
    public var routingKey = "image.request"
    public var validator = EnqueueMessageValidator()
    public var chunkSize = 500
    /// How long to wait for answers once everything is published, after the last answer.
    public var answerTimeout: Duration = .seconds(60)

    public struct Result: Sendable {
        public var summary: EnqueueSummary
        /// Published and confirmed by the broker.
        public var published: Int
        /// Published but not answered within the timeout (still queued, not lost).
        public var unanswered: Int
    }

    public init(connection: AMQPConnection) {
        self.connection = connection
    }

    public func run(_ lines: [EnqueueLine], progress: @escaping EnqueueProgress = { _, _ in }) async throws -> Result {
        let state = BulkState()
        let channel = try await connection.openChannel()
        let replyQueue = try await channel.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
        let replies = try await channel.consume(queue: replyQueue, exclusive: true)
        let collector = Task {
            var iterator = replies.makeAsyncIterator()
            while let delivery = try await iterator.next() {
                try await delivery.ack()
                guard let line = delivery.properties.correlationID.flatMap(Int.init),
                      let reply = try? JSONDecoder().decode(EnqueueReply.self, from: Data(delivery.body)),
                      let outcome = reply.enqueueOutcome
                else { continue }
                let (summary, published) = state.answer(line: line, outcome: outcome)
                progress(summary, published)
            }
        }
        defer { collector.cancel() }

        var start = 0
        while start < lines.count {
            let chunk = lines[start..<min(lines.count, start + chunkSize)]
            start += chunk.count
            var messages: [AMQPOutgoingMessage] = []
            var numbers: [Int] = []
            for line in chunk {
                switch validator.validate(body: line.body) {
                case .success(let message):
                    numbers.append(line.number)
                    messages.append(AMQPOutgoingMessage(
                        exchange: exchange, routingKey: routingKey, body: message.body,
                        properties: AMQPMessageProperties(
                            contentType: EnqueueMessage.contentType, deliveryMode: .persistent,
                            correlationID: String(line.number), replyTo: replyQueue, messageID: message.requestID),
                        mandatory: true))
                case .failure(let rejection):
                    state.refuseLocally(line: line.number, reason: rejection.reason)
                }
            }
            guard !messages.isEmpty else { continue }
            let outcome = try await channel.publishBatch(messages)
            var refused: [Int: String] = [:]
            for index in outcome.nacked { refused[index] = "the broker refused the message (basic.nack); publish it again later" }
            for returned in outcome.returned {
                refused[returned.index] = "no queue is bound to exchange \(exchange) (\(returned.replyText)); run `spotq migrate`"
            }
            let (summary, published) = state.published(numbers.enumerated().map { ($0.element, refused[$0.offset]) })
            progress(summary, published)
        }

        // Wait for every answer, giving up after `answerTimeout` without a new one.
        var lastCount = -1
        var lastProgress = ContinuousClock.now
        while state.unansweredCount > 0 {
            let answered = state.answeredCount
            if answered != lastCount {
                lastCount = answered
                lastProgress = .now
            } else if ContinuousClock.now - lastProgress > answerTimeout {
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        collector.cancel()
        _ = await collector.result
        try? await channel.close()
        return Result(summary: state.summary, published: state.publishedCount, unanswered: state.unansweredCount)
    }
}

/// The bulk enqueuer's tally, shared by the publishing loop and the reply collector.
final class BulkState: @unchecked Sendable {
    // Every access holds `lock`.
    private let lock = NSLock()
    private var tally = EnqueueSummary()
    private var awaiting = Set<Int>()
    private var publishedTotal = 0

    var summary: EnqueueSummary { lock.withLock { tally } }
    var publishedCount: Int { lock.withLock { publishedTotal } }
    var unansweredCount: Int { lock.withLock { awaiting.count } }
    var answeredCount: Int { lock.withLock { tally.accepted + tally.duplicates + tally.rejected } }

    func refuseLocally(line: Int, reason: String) {
        lock.withLock { tally.record(.rejected(reason: reason), place: line) }
    }

    /// Lines the broker took (nil reason) or refused. An answer may beat the confirm.
    func published(_ lines: [(Int, String?)]) -> (EnqueueSummary, Int) {
        lock.withLock {
            for (line, refusal) in lines {
                if let refusal {
                    tally.record(.rejected(reason: refusal), place: line)
                } else {
                    publishedTotal += 1
                    if !answered.contains(line) { awaiting.insert(line) }
                }
            }
            return (tally, publishedTotal)
        }
    }

    /// Only the first answer for a line counts: a message redelivered after the server
    /// committed it is answered again, as a duplicate.
    private var answered = Set<Int>()

    func answer(line: Int, outcome: EnqueueOutcome) -> (EnqueueSummary, Int) {
        lock.withLock {
            if answered.insert(line).inserted {
                awaiting.remove(line)
                tally.record(outcome, place: line)
            }
            return (tally, publishedTotal)
        }
    }
}
