import Foundation
import Logging
import PostgresClient
import SpotqCore

/// Reads pending work for the planner and writes plans: batches, manifests, token hashes
/// and item assignments, all in one transaction.
public struct PlannerStore: Sendable {
    public let client: PostgresClient

    /// Serialises planners: two `plan --apply` at once would plan the same items twice.
    static let lockKey: Int64 = 0x73_70_6F_74_70_6C_61_6E  // "spotplan"

    public init(client: PostgresClient) {
        self.client = client
    }

    /// A batch written by ``apply(policy:gpu:secret:)``.
    public struct CreatedBatch: Sendable {
        public var id: Int64
        public var planned: PlannedBatch
    }

    /// The pending items (and the registry) as the planner reads them.
    public func loadPendingWork() async throws -> (PendingWork, [String: Asset]) {
        try await client.withConnection { try await Self.loadPendingWork(on: $0) }
    }

    static func loadPendingWork(on connection: PostgresConnection) async throws -> (PendingWork, [String: Asset]) {
        var work = PendingWork()
        var registry: [String: Asset] = [:]
        for row in try await connection.query("SELECT filename, kind, size_bytes, sha256, source_url FROM assets") {
            let asset = try AssetStore.asset(row)
            registry[asset.filename] = asset
            _ = work.asset(asset.filename, kind: asset.kind, sizeBytes: asset.sizeBytes)
        }
        // LoRA file names joined by tabs: registered names hold no control characters.
        let rows = try await connection.query("""
            SELECT id, checkpoint,
                   coalesce((SELECT string_agg(e ->> 'file', E'\\t' ORDER BY n) FROM jsonb_array_elements(loras) WITH ORDINALITY AS l(e, n)), ''),
                   priority, extract(epoch FROM created_at)::bigint
            FROM image_generation_queue WHERE status = \(ItemStatus.pending)
            """, timeout: .seconds(600))
        work.reserve(items: rows.count, loras: rows.count)
        var loras: [Int32] = []
        for row in rows {
            guard let checkpoint = work.assetIndex(of: try row.decode(String.self, at: 1)) else { continue }
            loras.removeAll(keepingCapacity: true)
            let names = try row.decode(String.self, at: 2)
            if !names.isEmpty {
                for name in names.split(separator: "\t") {
                    if let index = work.assetIndex(of: String(name)) { loras.append(index) }
                }
            }
            work.addItem(
                id: try row.decode(Int64.self, at: 0), checkpoint: checkpoint, loras: loras,
                priority: try row.decode(Int32.self, at: 3), createdAt: try row.decode(Int64.self, at: 4))
        }
        return (work, registry)
    }

    /// Plans every pending item and writes the result; returns the new batches. Their work
    /// messages are not published yet: that is ``BatchPublisher``'s job, after this commit.
    public func apply(policy: PlanningPolicy, gpu: GPUProfile, secret: String) async throws -> (batches: [CreatedBatch], plan: Plan, work: PendingWork) {
        try await client.withTransaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", timeout: .seconds(600))
            let (work, registry) = try await Self.loadPendingWork(on: connection)
            let plan = Planner.plan(work, policy: policy, gpu: gpu)
            var created: [CreatedBatch] = []
            for batch in plan.batches {
                let id = try await Self.insert(batch, work: work, registry: registry, gpu: gpu, secret: secret, on: connection)
                created.append(CreatedBatch(id: id, planned: batch))
            }
            return (created, plan, work)
        }
    }

    static func insert(
        _ batch: PlannedBatch, work: PendingWork, registry: [String: Asset], gpu: GPUProfile, secret: String, on connection: PostgresConnection
    ) async throws -> Int64 {
        let filenames = batch.downloadOrder.map { work.assets[Int($0)].filename }
        let estimate = batch.estimate
        let rows = try await connection.query("""
            INSERT INTO batches (status, assets, item_count, payload_bytes, estimated_payload_gb, estimated_setup_hours,
                                 estimated_run_hours, estimated_usd, estimated_usd_per_image, gpu_type)
            VALUES (\(BatchStatus.planned), \(PostgresJSON(filenames))::jsonb, \(batch.generationOrder.count), \(batch.payloadBytes),
                    \(estimate.payloadGB), \(estimate.setupHours), \(estimate.runHours), \(estimate.usd), \(estimate.usdPerImage), \(gpu.gpuType))
            RETURNING id
            """)
        let id = try rows[0].decode(Int64.self, at: 0)
        let manifest = BatchManifest(
            batchID: id, gpuType: gpu.gpuType,
            assets: try filenames.map { name in
                guard let asset = registry[name] else { throw StoreError(message: "asset \(name) vanished from the registry while planning") }
                return asset
            },
            checkpoints: batch.checkpoints.map { work.assets[Int($0)].filename }, itemCount: batch.generationOrder.count,
            payloadBytes: batch.payloadBytes, orderStrategy: batch.orderStrategy, estimate: estimate, predicted: batch.timeline)
        try await connection.query("""
            UPDATE batches SET manifest = \(PostgresJSON(manifest))::jsonb,
                               upload_token_hash = \(BatchToken.hash(BatchToken.make(secret: secret, batchID: id))),
                               work_public_keys = ARRAY[\(WorkSignature.Signer(secret: secret).publicKey)]
            WHERE id = \(id)
            """)
        let ids = PostgresArray(batch.generationOrder.map { work.items[Int($0)].id })
        let positions = PostgresArray(batch.generationOrder.indices.map { Int32($0) })
        let assigned = try await connection.query("""
            UPDATE image_generation_queue q
            SET status = \(ItemStatus.target(of: .planned)), batch_id = \(id), batch_position = p.position, planned_at = now()
            FROM unnest(\(ids)::bigint[], \(positions)::integer[]) AS p(id, position)
            WHERE q.id = p.id AND q.status = ANY(\(ItemStatus.sources(of: .planned).sql))
            """, timeout: .seconds(600))
        guard assigned.affectedRows == batch.generationOrder.count else {
            throw StoreError(message: "batch \(id): \(batch.generationOrder.count - assigned.affectedRows) items stopped being pending while planning; nothing was written, plan again")
        }
        return id
    }
}
