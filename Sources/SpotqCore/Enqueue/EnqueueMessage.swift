import Foundation

/// A request to generate one image, as the website publishes it to `spotq.enqueue` (and as
/// each line of a `spotq enqueue` JSONL file holds it). Version 1:
///
/// ```json
/// {"version": 1, "request_id": "order-1234-image-1", "checkpoint": "sdxl_base.safetensors",
///  "loras": [{"file": "ink_style.safetensors", "strength": 0.8}],
///  "prompt": {"positive": "a lighthouse at dawn", "seed": 42},
///  "workflow": {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl_base.safetensors"}}},
///  "priority": 0}
/// ```
///
/// Only the envelope is checked here (JSON, version, field names and types, size); the
/// rules about assets, LoRA entries, prompt fields and the workflow are the database's,
/// checked on insert, so SQL and AMQP enqueue refuse exactly the same things.
public struct EnqueueMessage: Sendable, Equatable {
    public var requestID: String
    /// The message exactly as received; PostgreSQL reads the fields from it, so numbers
    /// such as 64-bit seeds keep every digit.
    public var body: [UInt8]

    public init(requestID: String, body: [UInt8]) {
        self.requestID = requestID
        self.body = body
    }

    public static let version = 1
    public static let contentType = "application/json"
    public static let requiredFields = ["version", "request_id", "checkpoint", "prompt", "workflow"]
    public static let optionalFields = ["loras", "priority"]
}

/// Why a message was refused; the text goes into the dead letter's `x-spotq-reason` header.
public struct EnqueueRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    /// The message's `request_id`, when it could be read.
    public var requestID: String?

    public init(reason: String, requestID: String? = nil) {
        self.reason = reason
        self.requestID = requestID
    }

    public var description: String { reason }
}

/// Checks a message's envelope before it goes near the database.
public struct EnqueueMessageValidator: Sendable {
    /// Largest accepted body; ComfyUI API workflows are typically 5–50 KB.
    public var maxBytes: Int

    public static let defaultMaxBytes = 1_048_576

    public init(maxBytes: Int = EnqueueMessageValidator.defaultMaxBytes) {
        self.maxBytes = maxBytes
    }

    public func validate(
        body: [UInt8], contentType: String? = nil, contentEncoding: String? = nil
    ) -> Result<EnqueueMessage, EnqueueRejection> {
        guard body.count <= maxBytes else {
            return .failure(EnqueueRejection(reason: "the message is \(body.count) bytes; the limit is \(maxBytes) (SPOTQ_ENQUEUE_MAX_BYTES)"))
        }
        if let contentEncoding, !contentEncoding.isEmpty, contentEncoding.lowercased() != "identity" {
            return .failure(EnqueueRejection(reason: "content_encoding \"\(contentEncoding.prefix(50))\" is not supported; send plain UTF-8 JSON"))
        }
        if let contentType, !contentType.isEmpty {
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard mediaType == EnqueueMessage.contentType else {
                return .failure(EnqueueRejection(reason: "content_type \"\(contentType.prefix(80))\" is not application/json"))
            }
        }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
        } catch {
            return .failure(EnqueueRejection(reason: "the body is not valid JSON: \(JSONText.describe(error))"))
        }
        guard let object = root as? [String: Any] else {
            return .failure(EnqueueRejection(reason: "the body must be a JSON object, not \(JSONText.typeName(root))"))
        }
        let requestID = object["request_id"] as? String
        func reject(_ reason: String) -> Result<EnqueueMessage, EnqueueRejection> {
            .failure(EnqueueRejection(reason: reason, requestID: requestID))
        }

        guard let versionValue = object["version"], !(versionValue is NSNull) else {
            return reject("\"version\" is missing; this server reads version \(EnqueueMessage.version)")
        }
        guard let version = JSONText.wholeNumber(versionValue), version == EnqueueMessage.version else {
            return reject("unknown version \(Self.shortJSON(versionValue)); this server reads version \(EnqueueMessage.version)")
        }
        let known = EnqueueMessage.requiredFields + EnqueueMessage.optionalFields
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            return reject("unknown field \"\(unknown.prefix(100))\"; version 1 has \(known.joined(separator: ", "))")
        }
        for (field, expected) in [("request_id", "string"), ("checkpoint", "string"), ("prompt", "object"), ("workflow", "object")] {
            guard let value = object[field], !(value is NSNull) else { return reject("\"\(field)\" is missing") }
            let actual = JSONText.typeName(value)
            guard actual == expected else { return reject("\"\(field)\" must be a JSON \(expected), not \(actual)") }
        }
        if let loras = object["loras"], !(loras is NSNull), !(loras is [Any]) {
            return reject("\"loras\" must be a JSON array, not \(JSONText.typeName(loras))")
        }
        if let priority = object["priority"], !(priority is NSNull) {
            guard let value = JSONText.wholeNumber(priority), Int32(exactly: value) != nil else {
                return reject("\"priority\" must be a whole number (-1000..1000), not \(Self.shortJSON(priority))")
            }
        }
        return .success(EnqueueMessage(requestID: requestID!, body: body))
    }

    static func shortJSON(_ value: Any) -> String {
        if let text = value as? String { return "\"\(text.prefix(50))\"" }
        if let number = value as? NSNumber { return JSONText.isBool(number) ? (number.boolValue ? "true" : "false") : number.stringValue }
        return JSONText.typeName(value)
    }
}
