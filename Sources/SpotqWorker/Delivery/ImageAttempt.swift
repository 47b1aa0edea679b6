import Foundation
import Logging
import SpotqCore
import SpotqBundle

/// One attempt at an image: ComfyUI generates it, the images are zipped into a result
/// bundle, the bundle is uploaded (retried until a 2xx, a refusal or the deadline), and the
/// stored images are deleted from ComfyUI's output folder. A ComfyUI failure is blamed on
/// the item, a model or the pod by ``AttemptFault``.
struct ImageAttempt: Sendable {
    let configuration: WorkerConfiguration
    let comfy: ComfyClient
    let api: ServerAPI
    let notice: TerminationNotice
    let activity: ActivityTracker
    let logger: Logger

    /// Generates and uploads, racing the termination deadline. At the deadline the answer is
    /// `.interrupted`: the attempt is cancelled, and its HTTP calls abort within milliseconds.
    func run(_ item: WorkItem) async -> AttemptResult {
        await withTaskGroup(of: AttemptResult?.self) { group in
            group.addTask { await attempt(item) }
            group.addTask {
                await notice.waitForDeadline()
                return Task.isCancelled ? nil : .interrupted
            }
            defer { group.cancelAll() }
            while let next = await group.next() {
                if let result = next { return result }
            }
            return .interrupted
        }
    }

    func attempt(_ item: WorkItem) async -> AttemptResult {
        let images: [ComfyClient.Image]
        do {
            // A file name prefix of this attempt's own: ComfyUI's cache would name a deleted file.
            let sent = UUID().uuidString.lowercased()
            let workflow = try OutputPrefixes.unique(item.workflowJSON, attempt: String(sent.prefix(8)))
            let promptID = try await comfy.submit(workflowJSON: workflow, promptID: sent)
            activity.generating(item: item.itemID, prompt: promptID)
            images = try await comfy.waitForImages(promptID: promptID, limit: configuration.generationTimeout)
        } catch let failure as ComfyFailure {
            if Task.isCancelled { return .interrupted }
            return AttemptFault.of(failure, verifiedModels: Set(item.order.models), modelOfNode: item.modelOfNode).result
        } catch is CancellationError {
            return .interrupted
        } catch {
            return .failed("\(error)")
        }
        let bundle: Data
        do {
            // Each file named for its item, so a bundle never collides with another's.
            let named = images.enumerated().map { index, image in
                BundleWriter.Image(filename: "\(item.itemID)_\(String(format: "%04d", index + 1)).\(Self.fileExtension(image.data))", data: image.data)
            }
            bundle = try BundleWriter.make(item: BundleQueueRow(id: item.itemID, requestID: item.requestID, batchID: item.batchID), images: named)
        } catch {
            return .failed("could not build the result bundle: \(error)")
        }
        activity.uploading(item: item.itemID)
        do {
            switch try await api.upload(bundle, notice: notice) {
            case .stored:
                deleteOutputs(images, item: item)
                return .stored
            case .refused(let reason):
                return .refused(reason)
            }
        } catch {
            return .interrupted
        }
    }

    /// Only after the server stored them: until then the files are the only copy.
    func deleteOutputs(_ images: [ComfyClient.Image], item: WorkItem) {
        guard let directory = configuration.comfyOutputDirectory else { return }
        for problem in ComfyOutputs(directory: directory).delete(images) {
            logger.warning("worker: an output file was kept", metadata: ["item": "\(item.itemID)", "problem": "\(problem)"])
        }
    }

    static func fileExtension(_ data: Data) -> String {
        switch ImageMagic.contentType(of: data) {
        case "image/jpeg": "jpg"
        case "image/webp": "webp"
        default: "png"
        }
    }
}
