/// What one pod's first hours look like under an order: downloads one after another at a
/// fixed bandwidth from time 0, the GPU generating items strictly in generation order, each
/// starting when the previous one finished and its own assets are on disk.
public struct Timeline: Sendable, Equatable, Codable {
    /// When the first image is finished, seconds from the first download's start.
    public var timeToFirstImage: Double
    /// Time the GPU spent waiting for downloads before finishing the last image.
    public var gpuIdleSeconds: Double
    /// When the last image is finished.
    public var makespan: Double
    /// When the last download finished.
    public var downloadSeconds: Double

    enum CodingKeys: String, CodingKey {
        case timeToFirstImage = "time_to_first_image_s"
        case gpuIdleSeconds = "gpu_idle_s"
        case makespan = "makespan_s"
        case downloadSeconds = "download_s"
    }
}

public enum TimelineSimulator {
    public static func simulate(
        _ graph: BatchGraph, downloadOrder: [Int32], generationOrder: [Int32],
        bytesPerSecond: Double, secondsPerImage: Double
    ) -> Timeline {
        var arrival = [Double](repeating: .infinity, count: graph.assetCount)
        var clock = 0.0
        for asset in downloadOrder {
            clock += Double(graph.assetSizes[Int(asset)]) / bytesPerSecond
            arrival[Int(asset)] = clock
        }
        let downloads = clock
        var gpu = 0.0
        var idle = 0.0
        var first = 0.0
        for (index, item) in generationOrder.enumerated() {
            let ready = graph.assets(of: Int(item)).reduce(0.0) { max($0, arrival[Int($1)]) }
            if ready > gpu {
                idle += ready - gpu
                gpu = ready
            }
            gpu += secondsPerImage
            if index == 0 { first = gpu }
        }
        return Timeline(timeToFirstImage: first, gpuIdleSeconds: idle, makespan: gpu, downloadSeconds: downloads)
    }
}
