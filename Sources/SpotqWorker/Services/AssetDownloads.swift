import ServiceLifecycle

/// The batch's model downloads, as a service: waits for the manifest the batch run hands
/// over, then downloads every model in the manifest's order (``AssetSetup``), until done, a
/// termination notice, or shutdown.
struct AssetDownloads: Service {
    let setup: Handoff<AssetSetup.Plan>
    let notice: TerminationNotice

    func run() async throws {
        await untilGracefulShutdown {
            guard let plan = await setup.value() else { return }
            await plan.setup.downloadAll(plan.assets, notice: notice)
        }
    }
}
