import CurlClient
import Foundation
import Logging
import SpotqCore

/// Downloads the batch's models in the manifest's order into `<workspace>/models/{checkpoints,loras}`,
/// resuming partial files and verifying size and SHA-256, and leaves a marker per verified
/// file in `<workspace>/.spotq/ready/` so a restarted pod skips it. A verified file is ready
/// once ComfyUI lists it too: one it never lists means ComfyUI does not see the worker's
/// model folders, and the pod is faulted (``PodHealth``) before any item is blamed for it;
/// so is a workspace it cannot write to (a full disk). A model the source will not give is
/// the model's: `asset.failed`, and the items needing it are dead-lettered.
struct AssetSetup: Sendable {
    let configuration: WorkerConfiguration
    let http: HTTPClient
    /// Asks ComfyUI for its model lists, on the downloads' HTTP client.
    let comfy: ComfyClient
    let availability: AssetAvailability
    let health: PodHealth
    let events: EventPublisher
    let logger: Logger
    /// Attempts per model before it is given up (items needing it are dead-lettered).
    var attempts = 5

    func destination(_ asset: Asset) -> URL {
        configuration.workspace.appendingPathComponent("models")
            .appendingPathComponent(asset.kind == .checkpoint ? "checkpoints" : "loras")
            .appendingPathComponent(asset.filename)
    }

    func marker(_ asset: Asset) -> URL {
        configuration.workspace.appendingPathComponent(".spotq/ready").appendingPathComponent(asset.filename)
    }

    /// True when an earlier run verified this exact file and it is still whole.
    func alreadyVerified(_ asset: Asset) -> Bool {
        guard let recorded = try? String(contentsOf: marker(asset), encoding: .utf8), recorded == asset.sha256,
              let size = (try? FileManager.default.attributesOfItem(atPath: destination(asset).path))?[.size] as? Int64
        else { return false }
        return size == asset.sizeBytes
    }

    func downloadAll(_ assets: [Asset], notice: TerminationNotice) async {
        for asset in assets {
            if Task.isCancelled { return }
            if notice.isSet { return }
            await fetch(asset)
        }
    }

    func fetch(_ asset: Asset) async {
        let file = destination(asset)
        if alreadyVerified(asset) {
            logger.info("worker: \(asset.filename) already on disk (verified by an earlier run)")
            guard await listedByComfy(asset) else { return }
            availability.markReady(asset.filename)
            events.activity.progressed()
            await events.publish(.assetReady, detail: ["filename": .string(asset.filename), "reused": .bool(true)])
            return
        }
        do {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: marker(asset).deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            // The pod's disk, not the model: another pod would have it.
            health.giveUp("cannot create the model folders in the workspace: \(error)")
            return
        }
        var lastError = ""
        events.activity.downloading(asset.filename, bytes: 0)
        var lastWasLocal = false
        for attempt in 1...attempts {
            let started = ContinuousClock.now
            do {
                let result = try await http.download(
                    asset.sourceURL, to: file, expectedSHA256: asset.sha256, expectedSize: asset.sizeBytes,
                    progress: { [activity = events.activity] in activity.downloading(asset.filename, bytes: $0.receivedBytes) })
                try asset.sha256.write(to: marker(asset), atomically: true, encoding: .utf8)
                let seconds = Double((ContinuousClock.now - started).components.seconds)
                logger.info("worker: \(asset.filename) verified", metadata: ["bytes": "\(result.totalBytes)", "resumed_from": "\(result.resumedFrom)"])
                guard await listedByComfy(asset) else { return }
                availability.markReady(asset.filename)
                events.activity.downloadEnded(asset.filename, ready: true)
                await events.publish(.assetReady, detail: [
                    "filename": .string(asset.filename), "bytes": .number(Double(result.totalBytes)),
                    "resumed_from": .number(Double(result.resumedFrom)), "seconds": .number(seconds),
                ])
                return
            } catch {
                if Task.isCancelled { return }
                lastError = "\(error)"
                lastWasLocal = (error as? HTTPClientError).map { $0.code == .io } ?? true
                logger.warning("worker: download of \(asset.filename) failed (attempt \(attempt) of \(attempts))", metadata: ["error": "\(error)"])
                if let failure = error as? HTTPClientError, failure.httpStatus == 404 || failure.httpStatus == 403 || failure.httpStatus == 410 { break }
                try? await Task.sleep(for: configuration.uploadBackoff.delay(afterFailures: attempt))
            }
        }
        guard !lastWasLocal else {
            // Writing to the workspace failed (a full or broken disk): the pod's fault.
            health.giveUp("cannot write model \(asset.filename) into the workspace (\(file.path)): \(lastError)")
            return
        }
        availability.markFailed(asset.filename, reason: lastError)
        events.activity.downloadEnded(asset.filename, ready: false)
        await events.publish(.assetFailed, detail: ["filename": .string(asset.filename), "reason": .string(String(lastError.prefix(1_000)))])
    }
}

extension AssetSetup {
    /// True once ComfyUI lists the verified file in its folder (asked every 500 ms: a file just
    /// renamed into place may take a moment), or when it cannot say (no answer for
    /// SPOTQ_MODEL_LIST_WAIT_SECONDS, or no `/models` route): then the attempts find out.
    /// False when ComfyUI answers without it for that long: the pod is faulted.
    func listedByComfy(_ asset: Asset) async -> Bool {
        let folder = asset.kind == .checkpoint ? "checkpoints" : "loras"
        let deadline = ContinuousClock.now + configuration.modelListWait
        var answered = false
        while true {
            switch await comfy.models(in: folder) {
            case .listed(let names):
                if names.contains(asset.filename) { return true }
                answered = true
            case .notOffered:
                logger.warning("worker: ComfyUI offers no model list; \(asset.filename) is used unconfirmed", metadata: ["folder": "\(folder)"])
                return true
            case .unreachable:
                break
            }
            if Task.isCancelled { return false }
            guard ContinuousClock.now < deadline else { break }
            try? await Task.sleep(for: .milliseconds(500))
        }
        guard answered else {
            logger.warning("worker: ComfyUI did not answer for its model list; \(asset.filename) is used unconfirmed", metadata: ["waited": "\(configuration.modelListWait)"])
            return true
        }
        health.giveUp("ComfyUI does not list model \(asset.filename), verified at \(destination(asset).path), after \(configuration.modelListWait): it does not see the worker's model folders (start it with --base-directory or --extra-model-paths-config naming \(configuration.workspace.path)/models)")
        return false
    }

    /// What the downloads service is handed once the manifest is in.
    struct Plan: Sendable {
        var setup: AssetSetup
        var assets: [Asset]
    }
}
