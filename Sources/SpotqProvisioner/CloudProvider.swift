import SpotqCore

/// A cloud that rents GPU pods. RunPod (GraphQL) is the first; `spotq devcloud` speaks the
/// same API on this machine.
public protocol CloudProvider: Sendable {
    /// Lowercase identifier stored in `pods.provider` (and sent by the pod's worker).
    var name: String { get }
    func rentSpot(_ request: PodRentRequest, bidPerGPU: Double) async throws(ProviderError) -> ProviderPod
    func rentOnDemand(_ request: PodRentRequest) async throws(ProviderError) -> ProviderPod
    func stop(podID: String) async throws(ProviderError)
    func bidResume(podID: String, bidPerGPU: Double, gpuCount: Int) async throws(ProviderError)
    func resume(podID: String, gpuCount: Int) async throws(ProviderError)
    func terminate(podID: String) async throws(ProviderError)
    func listPods() async throws(ProviderError) -> [ProviderPod]
    func prices(gpuTypes: [String], gpuCount: Int) async throws(ProviderError) -> [GPUChoice.Price]
}

/// Everything a rental needs; the environment is exactly what the pod's worker needs.
public struct PodRentRequest: Sendable, Equatable {
    public var name: String
    public var gpuType: String
    public var template: FleetSettings.PodTemplate
    public var volumeGB: Int
    public var environment: [(key: String, value: String)]

    public init(name: String, gpuType: String, template: FleetSettings.PodTemplate, volumeGB: Int, environment: [(key: String, value: String)]) {
        self.name = name
        self.gpuType = gpuType
        self.template = template
        self.volumeGB = volumeGB
        self.environment = environment
    }

    public static func == (a: PodRentRequest, b: PodRentRequest) -> Bool {
        a.name == b.name && a.gpuType == b.gpuType && a.template == b.template && a.volumeGB == b.volumeGB
            && a.environment.map(\.key) == b.environment.map(\.key) && a.environment.map(\.value) == b.environment.map(\.value)
    }
}

/// A pod as the provider lists it.
public struct ProviderPod: Sendable, Equatable {
    public var id: String
    public var name: String
    /// CREATED, RUNNING, RESTARTING, EXITED, PAUSED, DEAD, TERMINATED.
    public var desiredStatus: String
    /// False until the container is up.
    public var hasRuntime: Bool
    public var costPerHour: Double?
    public var interruptible: Bool?
    public var lastStatusChange: String?

    public init(id: String, name: String, desiredStatus: String, hasRuntime: Bool, costPerHour: Double?, interruptible: Bool?, lastStatusChange: String? = nil) {
        self.id = id
        self.name = name
        self.desiredStatus = desiredStatus
        self.hasRuntime = hasRuntime
        self.costPerHour = costPerHour
        self.interruptible = interruptible
        self.lastStatusChange = lastStatusChange
    }

    /// What this means for the fleet.
    public var status: FleetPod.ProviderStatus {
        switch desiredStatus {
        case "RUNNING", "RESTARTING", "CREATED": hasRuntime ? .running : .starting
        case "EXITED", "PAUSED": .exited
        default: .gone  // DEAD, TERMINATED
        }
    }
}

/// Why a provider call failed, sorted by what the provisioner does about it.
public struct ProviderError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No pod at this price or spec now (try a higher bid, later, or on-demand).
        case noCapacity
        /// The provider has no spot API (any more): use the fallback.
        case spotUnsupported
        /// A reclaimed pod's host has no free GPU: replace the pod.
        case cannotResume
        /// The API key was refused.
        case unauthorized
        /// The pod does not exist (any more).
        case notFound
        /// Network trouble, 5xx, "something went wrong": try again later.
        case transient
        /// Anything else; the message says what.
        case other
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
