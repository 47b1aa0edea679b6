import CurlClient
import Foundation
import Logging
import SpotqCore

/// RunPod's GraphQL API over libcurl (reference: runpod-api.md). The API key goes in the
/// `Authorization` header only; it is never logged or put in a URL.
public struct RunPodProvider: CloudProvider {
    public let name = "runpod"
    public let endpoint: String
    let apiKey: String
    let http: HTTPClient
    let logger: Logger

    public init(endpoint: String = "https://api.runpod.io/graphql", apiKey: String, http: HTTPClient, logger: Logger) {
        self.endpoint = endpoint
        self.apiKey = apiKey
        self.http = http
        self.logger = logger
    }

    // MARK: Documents (variables, never inline literals: no escaping of names or env values)

    static let podFields = "id name desiredStatus podType costPerHr gpuCount lastStatusChange runtime { uptimeInSeconds }"
    static let rentSpot = "mutation Rent($input: PodRentInterruptableInput!) { podRentInterruptable(input: $input) { \(podFields) } }"
    static let rentOnDemand = "mutation Deploy($input: PodFindAndDeployOnDemandInput!) { podFindAndDeployOnDemand(input: $input) { \(podFields) } }"
    static let stop = "mutation Stop($input: PodStopInput!) { podStop(input: $input) { id desiredStatus } }"
    static let bidResume = "mutation BidResume($input: PodBidResumeInput!) { podBidResume(input: $input) { id desiredStatus costPerHr } }"
    static let resume = "mutation Resume($input: PodResumeInput!) { podResume(input: $input) { id desiredStatus costPerHr } }"
    static let terminate = "mutation Terminate($input: PodTerminateInput!) { podTerminate(input: $input) }"
    static let listPods = "query Pods { myself { pods { \(podFields) } } }"
    static let gpuPrices = """
        query Prices($lowest: GpuLowestPriceInput!) { gpuTypes { id displayName securePrice communityPrice secureSpotPrice communitySpotPrice \
        lowestPrice(input: $lowest) { minimumBidPrice uninterruptablePrice stockStatus } } }
        """

    // MARK: Calls

    public func rentSpot(_ request: PodRentRequest, bidPerGPU: Double) async throws(ProviderError) -> ProviderPod {
        var input = Self.rentInput(request)
        input.insert(("bidPerGpu", .number(bidPerGPU)), at: 0)
        let data = try await call(Self.rentSpot, variables: ["input": .object(input)], field: "podRentInterruptable", isSpot: true)
        return try Self.pod(data, interruptible: true)
    }

    public func rentOnDemand(_ request: PodRentRequest) async throws(ProviderError) -> ProviderPod {
        let data = try await call(Self.rentOnDemand, variables: ["input": .object(Self.rentInput(request))], field: "podFindAndDeployOnDemand")
        return try Self.pod(data, interruptible: false)
    }

    public func stop(podID: String) async throws(ProviderError) {
        _ = try await call(Self.stop, variables: ["input": .object([("podId", .string(podID))])], field: "podStop")
    }

    public func bidResume(podID: String, bidPerGPU: Double, gpuCount: Int) async throws(ProviderError) {
        _ = try await call(Self.bidResume, variables: ["input": .object([
            ("podId", .string(podID)), ("bidPerGpu", .number(bidPerGPU)), ("gpuCount", .integer(Int64(gpuCount))),
        ])], field: "podBidResume", isSpot: true)
    }

    public func resume(podID: String, gpuCount: Int) async throws(ProviderError) {
        _ = try await call(Self.resume, variables: ["input": .object([("podId", .string(podID)), ("gpuCount", .integer(Int64(gpuCount)))])], field: "podResume")
    }

    public func terminate(podID: String) async throws(ProviderError) {
        _ = try await call(Self.terminate, variables: ["input": .object([("podId", .string(podID))])], field: "podTerminate", voidResult: true)
    }

    public func listPods() async throws(ProviderError) -> [ProviderPod] {
        let data = try await call(Self.listPods, variables: [:], field: "myself")
        let pods = (data as? [String: Any])?["pods"] as? [[String: Any]] ?? []
        return pods.compactMap { try? Self.pod($0, interruptible: nil) }
    }

    public func prices(gpuTypes: [String], gpuCount: Int) async throws(ProviderError) -> [GPUChoice.Price] {
        let data = try await call(Self.gpuPrices, variables: ["lowest": .object([("gpuCount", .integer(Int64(gpuCount)))])], field: "gpuTypes")
        let types = data as? [[String: Any]] ?? []
        return types.compactMap { type in
            guard let id = type["id"] as? String, gpuTypes.contains(id) else { return nil }
            let lowest = type["lowestPrice"] as? [String: Any]
            let bid = (lowest?["minimumBidPrice"] as? NSNumber)?.doubleValue
            let onDemand = (lowest?["uninterruptablePrice"] as? NSNumber)?.doubleValue
                ?? [type["communityPrice"], type["securePrice"]].compactMap { ($0 as? NSNumber)?.doubleValue }.filter { $0 > 0 }.min()
            return GPUChoice.Price(gpuType: id, spotMinimumBid: bid, onDemand: onDemand, stock: lowest?["stockStatus"] as? String)
        }
    }

    // MARK: Plumbing

    /// The rent input shared by spot and on-demand (the seed's fields).
    static func rentInput(_ request: PodRentRequest) -> [(String, JSONValue)] {
        let template = request.template
        return [
            ("cloudType", .string(template.cloudType)), ("gpuCount", .integer(Int64(template.gpuCount))),
            ("gpuTypeId", .string(request.gpuType)), ("name", .string(request.name)), ("imageName", .string(template.imageName)),
            ("dockerArgs", .string(template.dockerArgs)), ("ports", .string(template.ports)),
            ("volumeInGb", .integer(Int64(request.volumeGB))), ("containerDiskInGb", .integer(Int64(template.containerDiskGB))),
            ("volumeMountPath", .string(template.volumeMountPath)), ("minDownload", .integer(Int64(template.minDownloadMbps))),
            ("env", .array(request.environment.map { .object([("key", .string($0.key)), ("value", .string($0.value))]) })),
        ]
    }

    static func pod(_ data: Any?, interruptible: Bool?) throws(ProviderError) -> ProviderPod {
        guard let object = data as? [String: Any], let id = object["id"] as? String else {
            throw ProviderError(.other, "RunPod answered without a pod id")
        }
        let podType = object["podType"] as? String
        return ProviderPod(
            id: id, name: object["name"] as? String ?? "", desiredStatus: object["desiredStatus"] as? String ?? "CREATED",
            hasRuntime: object["runtime"] is [String: Any], costPerHour: (object["costPerHr"] as? NSNumber)?.doubleValue,
            interruptible: interruptible ?? podType.map { $0 == "INTERRUPTABLE" || $0 == "BID" },
            lastStatusChange: object["lastStatusChange"] as? String)
    }

    /// Posts one operation and returns `data.<field>`; sorts failures into ``ProviderError``.
    func call(_ document: String, variables: [String: JSONValue], field: String, isSpot: Bool = false, voidResult: Bool = false) async throws(ProviderError) -> Any? {
        let body = JSONValue.object([("query", .string(document)), ("variables", .object(variables.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))]).serialized()
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        let answer: HTTPResponse
        do {
            answer = try await http.send(HTTPRequest(method: .post, url: endpoint, headers: headers, body: body, timeout: .seconds(30)))
        } catch {
            throw ProviderError(.transient, "RunPod API unreachable: \(error)")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
        let errors = object?["errors"] as? [[String: Any]] ?? []
        // RunPod may echo the rent input (the pod's token and broker login) in its errors.
        let message = ProviderErrorRedaction.redact(
            (errors.first?["message"] as? String) ?? String(decoding: answer.body.prefix(300), as: UTF8.self),
            secrets: ProviderErrorRedaction.secrets(in: variables, extra: [apiKey]))
        let code = (errors.first?["extensions"] as? [String: Any])?["code"] as? String
        switch answer.status {
        case 401, 403:
            throw ProviderError(.unauthorized, "RunPod refused the API key (HTTP \(answer.status)); check SPOTQ_RUNPOD_API_KEY")
        case 400 where isSpot && (code == "GRAPHQL_VALIDATION_FAILED" || message.contains("Cannot query field") || message.contains("Unknown type")):
            throw ProviderError(.spotUnsupported, "RunPod no longer offers \(field): \(message)")
        case 500...599:
            throw ProviderError(.transient, "RunPod answered HTTP \(answer.status): \(message)")
        case 200:
            break
        default:
            throw ProviderError(.other, "RunPod answered HTTP \(answer.status) to \(field): \(message)")
        }
        if !errors.isEmpty { throw Self.classify(message, field: field) }
        guard let data = object?["data"] as? [String: Any] else { throw ProviderError(.other, "RunPod answered without data to \(field)") }
        let value = data[field]
        if voidResult { return nil }
        guard let value, !(value is NSNull) else { throw ProviderError(.other, "RunPod returned no \(field)") }
        return value
    }

    /// Sorts a resolver error by its message (the wording varies; substrings, not whole strings).
    static func classify(_ message: String, field: String) -> ProviderError {
        let lower = message.lowercased()
        if lower.contains("no longer any instances") || lower.contains("no instances available") || lower.contains("does not have the resources")
            || lower.contains("bid") && lower.contains("low") {
            return ProviderError(.noCapacity, message)
        }
        if lower.contains("not enough free gpus") || lower.contains("cannot resume") { return ProviderError(.cannotResume, message) }
        if lower.contains("not found") || lower.contains("does not exist") { return ProviderError(.notFound, message) }
        if lower.contains("something went wrong") || lower.contains("try again later") { return ProviderError(.transient, message) }
        return ProviderError(.other, "\(field): \(message)")
    }
}
