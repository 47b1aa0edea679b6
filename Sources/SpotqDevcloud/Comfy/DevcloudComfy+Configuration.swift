import Foundation

extension DevcloudComfy {
    /// A fault that makes every prompt fail while it is set, as a broken pod would.
    public enum Fault: String, Sendable, CaseIterable {
        /// The checkpoint cannot be read (a truncated or corrupt file): `execution_error` on the
        /// checkpoint loader, `SafetensorError: Error while deserializing header: header too large`.
        case checkpointUnreadable = "checkpoint-unreadable"
        /// The GPU fails (`CUDA error: an illegal memory access`) on the node doing the work.
        case cudaError = "cuda-error"
    }

    /// Where the stand-in reads models and writes images, and how it behaves.
    public struct Configuration: Sendable {
        /// Per model kind (`checkpoints`, `loras`, …), the folders searched, in order.
        public var modelFolders: [String: [URL]]
        public var outputDirectory: URL
        /// PreviewImage writes here (`type: temp`).
        public var temporaryDirectory: URL
        /// LoadImage reads from here.
        public var inputDirectory: URL
        /// How long each prompt runs.
        public var secondsPerImage: Double = 2
        /// Written images are the workflow's size divided by this (small, but real, PNGs).
        public var imageScale = 8
        /// How long a running prompt goes on after an interrupt: real ComfyUI stops only at the
        /// next node or sampler step (measured 23.6 s while a long node finished).
        public var interruptLatency: Double = 0.5
        /// `--disable-metadata`: PNGs without the prompt in `tEXt` chunks.
        public var disableMetadata = false
        /// Real ComfyUI's default (`--cache-classic`): nodes whose inputs are the same as in the
        /// previous prompt are not run again, so the same graph sent again writes no new file and
        /// its history names the earlier one. False (`--cache-none`): every prompt runs in full.
        public var cacheOutputs = true
        /// Set: every prompt fails this way (tests change it at run time with ``DevcloudComfy/setFault(_:)``).
        public var fault: Fault? = nil
        /// devcloud: a file that gets `started <id>` and `ended <id>` as prompts run, read by
        /// devcloud's cloud (whether a pod generates, how many prompts its pods started).
        public var promptLog: URL? = nil

        /// Exactly these model folders; temp and input folders beside the output folder.
        public init(modelFolders: [String: [URL]], outputDirectory: URL) {
            self.modelFolders = modelFolders
            self.outputDirectory = outputDirectory
            let parent = outputDirectory.deletingLastPathComponent()
            temporaryDirectory = parent.appendingPathComponent("temp")
            inputDirectory = parent.appendingPathComponent("input")
        }

        /// A ComfyUI folder whose `models/` is `modelsDirectory` (the pod's `<workspace>/models`).
        public init(modelsDirectory: URL, outputDirectory: URL) {
            let base = modelsDirectory.deletingLastPathComponent()
            self.init(modelFolders: ComfyModelFolders.standard(base: base, modelsDirectory: modelsDirectory, outputDirectory: outputDirectory), outputDirectory: outputDirectory)
        }

        /// The folders real ComfyUI 0.3.64 uses when started with these `main.py` flags:
        /// `<base>/models/<kind>/` (base: `--base-directory`, else `currentDirectory`, standing in
        /// for ComfyUI's own folder), the YAMLs' folders, `--output-directory` (else `<base>/output`).
        /// Throws as ComfyUI fails at start: a `--base-directory` without `custom_nodes/`, or a
        /// YAML that is missing or outside the subset spotq reads.
        public static func comfyUI(baseDirectory: URL?, extraModelPathsConfigs: [URL] = [], outputDirectory: URL? = nil, currentDirectory: URL) throws -> Configuration {
            let base = (baseDirectory ?? currentDirectory).standardizedFileURL
            if baseDirectory != nil {
                let customNodes = base.appendingPathComponent("custom_nodes")
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: customNodes.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw ExtraModelPaths.Invalid(description:
                        "FileNotFoundError: [Errno 2] No such file or directory: '\(customNodes.path)' (ComfyUI 0.3.64 lists <base-directory>/custom_nodes at start and stops without it)")
                }
            }
            let output = (outputDirectory ?? base.appendingPathComponent("output")).standardizedFileURL
            var folders = ComfyModelFolders.standard(base: base, modelsDirectory: base.appendingPathComponent("models"), outputDirectory: output)
            // ComfyUI adds the output subfolders after the YAMLs: drop them and add them back after.
            let outputFolders = folders.mapValues { $0.filter { $0.path.hasPrefix(output.path + "/") } }
            folders = folders.mapValues { $0.filter { !$0.path.hasPrefix(output.path + "/") } }
            for file in extraModelPathsConfigs {
                ExtraModelPaths.apply(try ExtraModelPaths.load(file), to: &folders)
            }
            for (kind, extra) in outputFolders { folders[kind, default: []] += extra }
            var configuration = Configuration(modelFolders: folders, outputDirectory: output)
            configuration.temporaryDirectory = base.appendingPathComponent("temp")
            configuration.inputDirectory = base.appendingPathComponent("input")
            return configuration
        }
    }
}
