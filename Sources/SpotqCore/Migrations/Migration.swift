import Crypto
import Foundation

/// One numbered SQL file from `migrations/`, e.g. `0003_image_generation_queue.sql`.
public struct Migration: Sendable, Hashable {
    /// The number before the first underscore; migrations apply in increasing order.
    public let version: Int
    /// The rest of the file name without `.sql`, e.g. `image_generation_queue`.
    public let name: String
    public let sql: String
    /// SHA-256 of the file's bytes, hex; an applied migration whose file changes is refused.
    public let checksum: String

    public init(fileName: String, sql: String) throws {
        guard fileName.hasSuffix(".sql") else {
            throw MigrationError.badFileName(fileName)
        }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_"),
              let version = Int(stem[..<underscore]), version > 0,
              stem[..<underscore].allSatisfy(\.isNumber)
        else {
            throw MigrationError.badFileName(fileName)
        }
        self.version = version
        self.name = String(stem[stem.index(after: underscore)...])
        self.sql = sql
        self.checksum = SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// `0003_image_generation_queue`, as shown to operators.
    public var label: String { String(format: "%04d_%@", version, name) }
}

/// A migration recorded in the database as applied.
public struct AppliedMigration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let checksum: String

    public init(version: Int, name: String, checksum: String) {
        self.version = version
        self.name = name
        self.checksum = checksum
    }
}

/// Why migrations cannot run. Each message says what to do about it.
public enum MigrationError: Error, Equatable, CustomStringConvertible {
    case badFileName(String)
    case duplicateVersion(Int, [String])
    case editedAfterApply(label: String, appliedChecksum: String, fileChecksum: String)
    case missingFile(version: Int, name: String)
    case outOfOrder(label: String, latestApplied: Int)

    public var description: String {
        switch self {
        case .badFileName(let name):
            "migration file '\(name)' must be named NNNN_description.sql (a positive number, an underscore, a name)"
        case .duplicateVersion(let version, let files):
            "migration number \(version) is used by more than one file: \(files.joined(separator: ", "))"
        case .editedAfterApply(let label, let applied, let file):
            "migration \(label) was edited after it was applied (applied checksum \(applied.prefix(12))…, "
                + "file now \(file.prefix(12))…): restore the original file and put the change in a new migration"
        case .missingFile(let version, let name):
            String(format: "migration %04d_%@ is recorded as applied but its file is missing from the migrations folder", version, name)
        case .outOfOrder(let label, let latest):
            "migration \(label) is new but a later migration (\(latest)) is already applied: give it a number above \(latest)"
        }
    }
}

/// Decides what `spotq migrate` must do. Pure: the files and the applied records in,
/// the migrations to apply (in order) out, or the reason to refuse.
public enum MigrationPlanner {
    public static func pending(files: [Migration], applied: [AppliedMigration]) throws -> [Migration] {
        let byVersion = Dictionary(grouping: files, by: \.version)
        if let (version, group) = byVersion.first(where: { $0.value.count > 1 }) {
            throw MigrationError.duplicateVersion(version, group.map(\.label).sorted())
        }
        for record in applied.sorted(by: { $0.version < $1.version }) {
            guard let file = byVersion[record.version]?.first else {
                throw MigrationError.missingFile(version: record.version, name: record.name)
            }
            guard file.checksum == record.checksum else {
                throw MigrationError.editedAfterApply(
                    label: file.label, appliedChecksum: record.checksum, fileChecksum: file.checksum)
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        let latest = applied.map(\.version).max() ?? 0
        let pending = files.filter { !appliedVersions.contains($0.version) }.sorted { $0.version < $1.version }
        if let early = pending.first(where: { $0.version < latest }) {
            throw MigrationError.outOfOrder(label: early.label, latestApplied: latest)
        }
        return pending
    }
}
