import Foundation
import SpotqCore

/// Finds and reads the `migrations/` folder.
public enum MigrationDirectory {
    /// The folder to use: `explicit` if given (flag or `SPOTQ_MIGRATIONS_DIR`), else
    /// `./migrations`, else a `migrations` folder beside or above the running binary
    /// (a checkout's `.build/debug/spotq`, or `/usr/share/spotq/migrations` in the image).
    public static func locate(explicit: String?, executablePath: String = CommandLine.arguments.first ?? "") throws -> URL {
        if let explicit {
            let url = URL(fileURLWithPath: explicit)
            guard isMigrationFolder(url) else {
                throw StoreError(message: "migrations folder '\(explicit)' does not exist or holds no NNNN_*.sql files")
            }
            return url
        }
        var candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("migrations")]
        var directory = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(directory.appendingPathComponent("migrations"))
            candidates.append(directory.appendingPathComponent("share/spotq/migrations"))
            directory.deleteLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: "/usr/share/spotq/migrations"))
        guard let found = candidates.first(where: isMigrationFolder) else {
            throw StoreError(message: "no migrations folder found (looked in ./migrations and beside the spotq binary): "
                + "pass --migrations-dir or set SPOTQ_MIGRATIONS_DIR")
        }
        return found
    }

    /// Every `*.sql` file of `folder`, parsed; other files are ignored.
    public static func load(_ folder: URL) throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        return try names.map { name in
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            return try Migration(fileName: name, sql: text)
        }
    }

    private static func isMigrationFolder(_ url: URL) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.contains { $0.hasSuffix(".sql") && $0.first?.isNumber == true }
    }
}
