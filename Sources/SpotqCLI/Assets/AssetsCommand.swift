import ArgumentParser
import Foundation
import PostgresClient
import SpotqCore
import SpotqStore

/// `spotq assets`: the registry of checkpoints and LoRAs queue items may name.
struct AssetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assets",
        abstract: "Register and list the checkpoints and LoRAs queue items may name.",
        subcommands: [AssetsImportCommand.self, AssetsListCommand.self]
    )
}

struct AssetsImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Register assets from a JSON or CSV file (idempotent).",
        discussion: """
            Each asset has filename, kind (checkpoint or lora), size_bytes, sha256 and source_url.
            JSON: an array of objects with those keys, or {"assets": [...]}. CSV: a header row
            naming those columns, then one asset per row.

            The whole file is checked first; if anything is wrong nothing is imported. New
            assets are added and a new source_url for a known file is updated. A known file
            name with a different kind, size or sha256 is a conflict: it is listed and left as
            it is, and the command exits with status 1 (a changed file needs a new name).
            Importing the same file twice changes nothing.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The JSON or CSV file, or - for stdin.")
    var file: String

    @Option(help: "json or csv (default: from the extension, else from the first character).")
    var format: String?

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.assets")
        let contents = try InputFile.read(file)
        let parsedFormat: AssetFileParser.Format
        if let format {
            guard let chosen = AssetFileParser.Format(rawValue: format.lowercased()) else {
                throw ValidationError("--format must be json or csv")
            }
            parsedFormat = chosen
        } else {
            parsedFormat = .detect(path: file, contents: contents)
        }
        let assets: [Asset]
        do {
            assets = try AssetFileParser.parse(contents, format: parsedFormat)
        } catch {
            throw CLIError("\(file): nothing imported; \(error)")
        }
        let client = PostgresClient(configuration: try PostgresConfiguration(url: try connection.resolvedDatabaseURL()), logger: logger)
        let plan: AssetImportPlan
        do {
            plan = try await AssetStore(client: client).importAssets(assets)
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
        print("assets: \(plan.inserts.count) new, \(plan.unchanged.count) unchanged, "
            + "\(plan.sourceURLUpdates.count) source URL updated, \(plan.conflicts.count) conflicts")
        for asset in plan.inserts { print("  new       \(asset.kind.rawValue)  \(asset.filename)  \(ByteCount.format(asset.sizeBytes))") }
        for asset in plan.sourceURLUpdates { print("  updated   \(asset.filename): source_url") }
        for conflict in plan.conflicts { print("  CONFLICT  \(conflict)") }
        if !plan.conflicts.isEmpty { throw ExitCode(1) }
    }
}

struct AssetsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List registered assets.")

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print JSON (every field) instead of a table.")
    var json = false

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.assets")
        let client = PostgresClient(configuration: try PostgresConfiguration(url: try connection.resolvedDatabaseURL()), logger: logger)
        let assets: [Asset]
        do {
            assets = try await AssetStore(client: client).list()
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(assets), as: UTF8.self))
            return
        }
        var table = TextTable([("KIND", .left), ("FILENAME", .left), ("SIZE", .right), ("SHA256", .left), ("SOURCE", .left)])
        for asset in assets {
            table.add([asset.kind.rawValue, asset.filename, ByteCount.format(asset.sizeBytes), String(asset.sha256.prefix(12)) + "…", asset.sourceURL])
        }
        print(table.render())
        let total = assets.reduce(Int64(0)) { $0 + $1.sizeBytes }
        let checkpoints = assets.filter { $0.kind == .checkpoint }.count
        print("\(checkpoints) checkpoints, \(assets.count - checkpoints) LoRAs, \(ByteCount.format(total)) in all")
    }
}
