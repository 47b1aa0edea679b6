import Foundation

/// Which item of which batch a work message is for, read from where it was routed and its
/// body (both must agree on the batch).
public struct WorkItemReference: Sendable, Equatable {
    public var batchID: Int64
    public var itemID: Int64

    /// The batch a batch queue's name (or a work message's routing key, `spotq.batch.<id>`) names.
    public static func batchID(ofQueue name: String?) -> Int64? {
        let prefix = BrokerNames.batchQueuePrefix
        guard let name, name.hasPrefix(prefix), let batch = Int64(name.dropFirst(prefix.count)), batch > 0,
              BrokerNames.batchQueue(batch) == name
        else { return nil }
        return batch
    }

    public init?(routingKey: String?, body: [UInt8]) {
        guard let batch = Self.batchID(ofQueue: routingKey) else { return nil }
        struct Body: Decodable {
            var batchID: Int64?
            var itemID: Int64
            enum CodingKeys: String, CodingKey { case batchID = "batch_id", itemID = "item_id" }
        }
        guard let decoded = try? JSONDecoder().decode(Body.self, from: Data(body)), decoded.batchID == nil || decoded.batchID == batch else { return nil }
        self.batchID = batch
        self.itemID = decoded.itemID
    }
}
