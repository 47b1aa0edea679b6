import AMQPClient
import Foundation
import Logging
import PostgresClient
import SpotqBroker
import SpotqCore
import SpotqStore

/// Publishes the work messages of planned batches: one per image, in generation order, to
/// `spotq.work` → `spotq.batch.<id>`, with publisher confirms.
///
/// Crash-safe by construction: an item stays `planned` until the broker confirmed its
/// message, and only then becomes `queued`; a batch becomes `queued` when none of its items
/// is left `planned`. Every run starts with whatever is still planned, so a publisher that
/// died between the plan's commit and the last confirm is finished by the next one. A
/// message confirmed just before a crash may be published twice; pods and ingest treat
/// work at least once.
public struct BatchPublisher: Sendable {
    public let postgres: PostgresClient
    let batches: BatchStore
    public let amqp: AMQPClient
    public let logger: Logger
    public var chunkSize = 500
    /// Called after each chunk is confirmed and recorded; tests stop a run here to play a crash.
    public var afterChunk: @Sendable (_ batch: Int64, _ published: Int) throws -> Void = { _, _ in }
    public var topologySettings = BrokerTopologySettings()
    /// Signs each work message (``WorkSignature``); pods given the public key render only signed work.
    public let signer: WorkSignature.Signer?

    public init(postgres: PostgresClient, amqp: AMQPClient, signer: WorkSignature.Signer? = nil, logger: Logger) {
        self.postgres = postgres
        self.batches = BatchStore(client: postgres)
        self.amqp = amqp
        self.signer = signer
        self.logger = logger
    }

    public struct Published: Sendable, Equatable {
        public var batches = 0
        public var messages = 0

        public init(batches: Int = 0, messages: Int = 0) {
            self.batches = batches
            self.messages = messages
        }
    }

    /// Publishes every batch that still has planned items.
    @discardableResult
    public func publishPending() async throws -> Published {
        var total = Published()
        for id in try await batches.unpublished() {
            total.messages += try await publish(batch: id)
            total.batches += 1
        }
        return total
    }

    /// Publishes what is still planned of batch `id`; returns how many messages it sent.
    public func publish(batch id: Int64) async throws -> Int {
        try await batches.startPublishing(id)
        if let signer { try await batches.recordSigningKey(id, publicKey: signer.publicKey) }
        let connection = try await amqp.connection()
        let channel = try await connection.openChannel()
        do {
            let queue = try await TopologyDeclarer.declareBatch(id, settings: topologySettings, on: channel)
            var sent = 0
            while true {
                let work = try await batches.unpublishedWork(batch: id, limit: chunkSize)
                if work.isEmpty { break }
                let signatures = signer?.signatures(queue: queue, bodies: work.map(\.body))
                let messages = work.enumerated().map { index, message in
                    AMQPOutgoingMessage(
                        exchange: BrokerNames.workExchange, routingKey: queue, body: message.body,
                        properties: AMQPMessageProperties(
                            contentType: "application/json",
                            headers: signatures.map { [WorkSignature.header: .string($0[index])] },
                            deliveryMode: .persistent, messageID: "item-\(message.itemID)", type: "spotq.work.v1"),
                        mandatory: true)
                }
                let outcome = try await channel.publishBatch(messages)
                guard outcome.allConfirmed else {
                    throw AMQPError(code: .publishNacked, message: "batch \(id): the broker did not take \(outcome.count - outcome.confirmedCount) work messages; they stay planned and are published on the next run")
                }
                try await batches.published(items: work.map(\.itemID))
                sent += work.count
                try afterChunk(id, sent)
            }
            try await batches.finishPublishing(id)
            try? await channel.close()
            if sent > 0 { logger.info("planner: published batch \(id)", metadata: ["messages": "\(sent)", "queue": "\(queue)"]) }
            return sent
        } catch {
            try? await channel.close()
            throw error
        }
    }
}
