import SpotqCore
import Testing

@Suite("Migration planning")
struct MigrationPlannerTests {
    func file(_ name: String, _ sql: String = "SELECT 1;") throws -> Migration {
        try Migration(fileName: name, sql: sql)
    }

    func record(_ migration: Migration) -> AppliedMigration {
        AppliedMigration(version: migration.version, name: migration.name, checksum: migration.checksum)
    }

    @Test func fileName_givesVersionAndName() throws {
        let migration = try file("0003_image_generation_queue.sql")
        #expect(migration.version == 3)
        #expect(migration.name == "image_generation_queue")
        #expect(migration.label == "0003_image_generation_queue")
        #expect(migration.checksum.count == 64)
    }

    @Test(arguments: ["README.md", "abc_x.sql", "0000_zero.sql", "12.sql", "-1_neg.sql", "1a_x.sql"])
    func badFileNames_areRefusedWithTheExpectedShape(_ name: String) {
        #expect(throws: MigrationError.badFileName(name)) { try Migration(fileName: name, sql: "") }
    }

    @Test func nothingApplied_allPendingInVersionOrder() throws {
        let files = [try file("0002_b.sql"), try file("0001_a.sql"), try file("0010_c.sql")]
        #expect(try MigrationPlanner.pending(files: files, applied: []).map(\.version) == [1, 2, 10])
    }

    @Test func everythingApplied_nothingPending() throws {
        let files = [try file("0001_a.sql"), try file("0002_b.sql")]
        #expect(try MigrationPlanner.pending(files: files, applied: files.map(record)).isEmpty)
    }

    @Test func appliedFileEdited_isRefused() throws {
        let original = try file("0001_a.sql", "CREATE TABLE a ();")
        let edited = try file("0001_a.sql", "CREATE TABLE a (x int);")
        #expect(throws: MigrationError.self) {
            try MigrationPlanner.pending(files: [edited, try file("0002_b.sql")], applied: [record(original)])
        }
        do {
            _ = try MigrationPlanner.pending(files: [edited], applied: [record(original)])
        } catch {
            #expect("\(error)".contains("0001_a was edited after it was applied"))
        }
    }

    @Test func appliedFileMissing_isRefused() throws {
        let gone = try file("0001_a.sql")
        #expect(throws: MigrationError.missingFile(version: 1, name: "a")) {
            try MigrationPlanner.pending(files: [try file("0002_b.sql")], applied: [record(gone)])
        }
    }

    @Test func newFileBelowAnAppliedOne_isRefused() throws {
        let applied = try file("0005_e.sql")
        #expect(throws: MigrationError.outOfOrder(label: "0003_c", latestApplied: 5)) {
            try MigrationPlanner.pending(files: [try file("0003_c.sql"), applied], applied: [record(applied)])
        }
    }

    @Test func twoFilesWithOneNumber_areRefused() throws {
        #expect(throws: MigrationError.duplicateVersion(1, ["0001_a", "0001_b"])) {
            try MigrationPlanner.pending(files: [try file("0001_a.sql"), try file("0001_b.sql")], applied: [])
        }
    }
}
