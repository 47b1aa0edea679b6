import Foundation
import PostgresClient
import PostgresTestSupport
@testable import ServerTestSupport

/// How big the fault scenarios are. `make test` runs the short form; `make chaos` sets
/// `SPOTQ_CHAOS=full` for the sizes and outages the README's table reports.
enum ChaosScale {
    static var isFull: Bool { ProcessInfo.processInfo.environment["SPOTQ_CHAOS"] == "full" }

    static func pick<T>(short: T, full: T) -> T { isFull ? full : short }
}

/// One scenario's count after the system settled. Printed as one line, and appended as a
/// JSON line to `SPOTQ_CHAOS_REPORT` when set (`make chaos` turns those into the table).
struct ChaosOutcome: Codable, Sendable {
    var scenario: String
    /// Requests that were valid and accepted.
    var enqueued: Int
    var done: Int
    var deadLettered: Int
    /// The distinct reasons recorded with the dead letters (shortened).
    var reasons: [String] = []
    /// Bad inputs offered and refused with an error (the bad-input corpus only).
    var refused: Int? = nil
    /// Accepted and neither done nor dead-lettered with a reason. Must be 0.
    var lost: Int
    /// Stored more often than once. Must be 0.
    var duplicated: Int
    /// Images generated again because a fault threw away an attempt (costs GPU time, not correctness).
    var redone: Int? = nil
    /// Seconds from the end of the fault until the work it hit was stored again.
    var recoverySeconds: Double? = nil
    var note: String? = nil

    var line: String {
        let recovery = recoverySeconds.map { String(format: "%.1f s", $0) } ?? "-"
        let refusedText = refused.map { ", refused \($0)" } ?? ""
        let redoneText = redone.map { ", redone \($0)" } ?? ""
        let why = reasons.isEmpty ? "" : " (\(reasons.joined(separator: "; ")))"
        return "chaos | \(scenario) | enqueued \(enqueued), done \(done), dead-lettered \(deadLettered)\(why)\(refusedText), lost \(lost), duplicated \(duplicated)\(redoneText), recovered in \(recovery)"
    }

    func record() {
        print(line)
        guard let path = ProcessInfo.processInfo.environment["SPOTQ_CHAOS_REPORT"], !path.isEmpty,
              let json = try? JSONEncoder().encode(self)
        else { return }
        ChaosReportFile.append(json + Data("\n".utf8), to: path)
    }
}

enum ChaosReportFile {
    private static let lock = NSLock()

    static func append(_ data: Data, to path: String) {
        lock.withLock {
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(atPath: path, contents: nil)
            }
            guard let handle = FileHandle(forWritingAtPath: path) else { return }
            defer { try? handle.close() }
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: data)
        }
    }
}

/// Counts a settled scenario from the database alone: what was accepted, stored, dead-lettered.
enum ChaosCount {
    /// `enqueued`, `done`, `deadLettered` (items not done whose work message is recorded in
    /// `dead_letters`), `lost` and `duplicated` over every item in the database.
    static func outcome(scenario: String, postgres: PostgresClient) async throws -> ChaosOutcome {
        let enqueued = try await postgres.count("SELECT count(*) FROM image_generation_queue")
        let done = try await postgres.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'")
        // A work message's body names its item; the dead-letter recorder keeps the body.
        let deadItems = """
            SELECT DISTINCT (convert_from(body, 'UTF8')::jsonb ->> 'item_id')::bigint AS item_id, reason
            FROM dead_letters WHERE origin_queue LIKE 'spotq.batch.%'
            """
        let deadLettered = try await postgres.count(
            "SELECT count(DISTINCT q.id) FROM image_generation_queue q JOIN (\(deadItems)) d ON d.item_id = q.id WHERE q.status <> 'done'")
        let lost = try await postgres.count(
            "SELECT count(*) FROM image_generation_queue q WHERE q.status <> 'done' AND NOT EXISTS (SELECT 1 FROM (\(deadItems)) d WHERE d.item_id = q.id)")
        let duplicated = try await postgres.count(
            "SELECT coalesce(sum(n - 1), 0)::bigint FROM (SELECT item_id, count(*) AS n FROM image_generation_files GROUP BY item_id HAVING count(*) > 1) twice")
        let reasonRows = try await postgres.query(PostgresQuery(sql:
            "SELECT DISTINCT d.reason FROM (\(deadItems)) d JOIN image_generation_queue q ON q.id = d.item_id WHERE q.status <> 'done' ORDER BY 1"))
        let reasons = try reasonRows.map { try shorten($0.decode(String.self, at: 0)) }
        return ChaosOutcome(scenario: scenario, enqueued: enqueued, done: done, deadLettered: deadLettered, reasons: Array(Set(reasons)).sorted(),
                            lost: lost, duplicated: duplicated)
    }

    /// A reason short enough for a table cell.
    static func shorten(_ reason: String) -> String {
        let oneLine = reason.replacingOccurrences(of: "\n", with: " ")
        return oneLine.count <= 90 ? oneLine : String(oneLine.prefix(87)) + "..."
    }
}
