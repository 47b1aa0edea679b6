import Foundation

/// ComfyUI's output folder, from which the worker deletes each image once its upload was
/// stored (≈1.5 MB a 1024² PNG, on a volume of payload + 11 GB). The file is
/// `<output>/<subfolder>/<filename>` as the history names it; a name that would reach outside
/// the folder (`..`, an absolute path, a symlink out) is refused: a hostile or broken history
/// must never make the worker delete elsewhere.
struct ComfyOutputs: Sendable {
    let directory: URL

    /// The file a history entry names, or why it is refused.
    func file(subfolder: String, filename: String) -> Result<URL, Refusal> {
        guard !filename.isEmpty, filename != ".", filename != "..", !filename.contains("/"), !filename.contains("\0"), !subfolder.contains("\0") else {
            return .failure(Refusal(description: "the output name \(Self.quoted(filename)) is not a file name"))
        }
        guard !subfolder.hasPrefix("/") else { return .failure(Refusal(description: "the subfolder \(Self.quoted(subfolder)) is absolute")) }
        let root = directory.standardizedFileURL.resolvingSymlinksInPath()
        var folder = root
        for part in subfolder.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            guard part != ".." else { return .failure(Refusal(description: "the subfolder \(Self.quoted(subfolder)) climbs out of the output folder")) }
            folder.appendPathComponent(String(part), isDirectory: true)
        }
        // A symlinked subfolder may point anywhere: what counts is where it leads.
        let resolved = folder.resolvingSymlinksInPath()
        guard resolved.path == root.path || resolved.path.hasPrefix(root.path + "/") else {
            return .failure(Refusal(description: "the subfolder \(Self.quoted(subfolder)) leads out of the output folder"))
        }
        return .success(resolved.appendingPathComponent(filename, isDirectory: false))
    }

    /// Deletes the images' files; returns what could not be deleted, with why.
    func delete(_ images: [ComfyClient.Image]) -> [String] {
        var problems: [String] = []
        for image in images {
            switch file(subfolder: image.subfolder, filename: image.filename) {
            case .failure(let refusal):
                problems.append("not deleted: \(refusal)")
            case .success(let url):
                // Only a regular file: never a directory, never through a symlink.
                let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
                guard attributes?[.type] as? FileAttributeType == .typeRegular else {
                    problems.append("not deleted: \(url.path) is not a regular file")
                    continue
                }
                do { try FileManager.default.removeItem(at: url) } catch { problems.append("could not delete \(url.path): \(error)") }
            }
        }
        return problems
    }

    struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        var description: String
    }

    static func quoted(_ text: String) -> String { "'\(text.prefix(200))'" }
}
