import Foundation
import SpotqCore

/// ComfyUI 0.3.64's `validate_prompt` and `validate_inputs` (execution.py), step for step, so
/// the stand-in refuses what real ComfyUI refuses with the same JSON: the checks run in the
/// same order, a Python exception becomes the same error type, and `dependent_outputs` is
/// filled by the same loop. Pure: the model and input file lists are passed in.
struct ComfyPromptValidator {
    /// What `POST /prompt` answers after validation.
    enum Outcome {
        /// 200: queue these outputs (only the valid ones); `nodeErrors` names the others.
        case accepted(outputs: [String], nodeErrors: JSONValue)
        /// 400 with `{"error": error, "node_errors": nodeErrors}`.
        case refused(error: JSONValue, nodeErrors: JSONValue)
        /// A Python exception outside any `try` in ComfyUI: the server answers 500.
        case crashed
    }

    /// A Python exception: its type as `full_type_name` writes it and `str(exception)`.
    struct PythonException: Error {
        var type: String
        var message: String
    }

    let prompt: [(String, JSONValue)]
    let classes: [String: ComfyNodeClass]
    let modelFiles: (String) -> [String]
    let inputFiles: () -> [String]
    private var validated: [(id: String, valid: Bool, reasons: [JSONValue])] = []

    static func validate(
        _ prompt: JSONValue, classes: [String: ComfyNodeClass] = ComfyNodeClasses.all,
        modelFiles: @escaping (String) -> [String], inputFiles: @escaping () -> [String] = { [] }
    ) -> Outcome {
        let nodes: [(String, JSONValue)]
        switch prompt {
        case .object(let members): nodes = members
        // `for x in prompt` over an empty list or string finds no output; anything else raises.
        case .array(let elements) where elements.isEmpty: nodes = []
        case .string(let text) where text.isEmpty: nodes = []
        default: return .crashed
        }
        var validator = ComfyPromptValidator(prompt: nodes, classes: classes, modelFiles: modelFiles, inputFiles: inputFiles)
        return validator.run()
    }

    init(prompt: [(String, JSONValue)], classes: [String: ComfyNodeClass], modelFiles: @escaping (String) -> [String], inputFiles: @escaping () -> [String]) {
        self.prompt = prompt
        self.classes = classes
        self.modelFiles = modelFiles
        self.inputFiles = inputFiles
    }

    static func error(_ type: String, _ message: String, _ details: String) -> JSONValue {
        ["type": .string(type), "message": .string(message), "details": .string(details), "extra_info": .object([])]
    }

    func node(_ id: String) -> JSONValue? { prompt.first { $0.0 == id }?.1 }

    func classType(_ id: String) -> String { node(id)?[member: "class_type"]?.stringValue ?? "" }

    mutating func run() -> Outcome {
        var outputs: [String] = []
        for (id, node) in prompt {
            switch node {
            case .object: break
            // `'class_type' not in node`: a substring or element test on text and lists, a TypeError otherwise.
            case .string(let text) where !text.contains("class_type"): break
            case .array(let elements) where !elements.contains(.string("class_type")): break
            default: return .crashed
            }
            guard let classValue = node[member: "class_type"] else {
                return .refused(error: Self.error("invalid_prompt", "Cannot execute because a node is missing the class_type property.", "Node ID '#\(id)'"), nodeErrors: .object([]))
            }
            let name: String
            switch classValue {
            case .string(let text): name = text
            case .array, .object: return .crashed  // unhashable
            default: name = ComfyJSON.str(classValue)
            }
            guard let nodeClass = classes[name], classValue.stringValue != nil else {
                return .refused(error: Self.error("invalid_prompt", "Cannot execute because node \(name) does not exist.", "Node ID '#\(id)'"), nodeErrors: .object([]))
            }
            if nodeClass.isOutput { outputs.append(id) }
        }
        guard !outputs.isEmpty else {
            return .refused(error: Self.error("prompt_no_outputs", "Prompt has no outputs", ""), nodeErrors: .object([]))
        }

        var good: [String] = []
        var failures: [(output: String, reasons: [JSONValue])] = []
        var nodeErrors: [(id: String, reasons: [JSONValue], dependents: [String])] = []
        for output in outputs {
            var valid = false
            var reasons: [JSONValue] = []
            do {
                (valid, reasons) = try validateInputs(output)
            } catch let exception as PythonException {
                reasons = [[
                    "type": "exception_during_validation", "message": "Exception when validating node", "details": .string(exception.message),
                    "extra_info": ["exception_type": .string(exception.type), "traceback": .array([])],
                ]]
                record(output, valid: false, reasons: reasons)
            } catch { return .crashed }
            if valid {
                good.append(output)
                continue
            }
            failures.append((output, reasons))
            // As ComfyUI: every invalid node validated so far that has reasons gets this output.
            for entry in validated where !entry.valid && !entry.reasons.isEmpty {
                if let at = nodeErrors.firstIndex(where: { $0.id == entry.id }) {
                    nodeErrors[at].dependents.append(output)
                } else {
                    nodeErrors.append((entry.id, entry.reasons, [output]))
                }
            }
        }
        let errorsJSON = JSONValue.object(nodeErrors.map { entry in
            (entry.id, ["errors": .array(entry.reasons), "dependent_outputs": .array(entry.dependents.map { .string($0) }), "class_type": .string(classType(entry.id))])
        })
        guard !good.isEmpty else {
            // Only the outputs' own reasons reach `details`: empty when the cause is upstream.
            let details = failures.flatMap { failure in
                failure.reasons.map { "\($0[member: "message"]?.stringValue ?? ""): \($0[member: "details"]?.stringValue ?? "")" }
            }.joined(separator: "\n")
            return .refused(error: Self.error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details), nodeErrors: errorsJSON)
        }
        return .accepted(outputs: good, nodeErrors: errorsJSON)
    }

    mutating func record(_ id: String, valid: Bool, reasons: [JSONValue]) {
        if let at = validated.firstIndex(where: { $0.id == id }) {
            validated[at] = (id, valid, reasons)
        } else {
            validated.append((id, valid, reasons))
        }
    }

    /// `validate_inputs`: the node's own checks, recursing through its links.
    mutating func validateInputs(_ id: String) throws -> (Bool, [JSONValue]) {
        if let done = validated.first(where: { $0.id == id }) { return (done.valid, done.reasons) }
        guard let nodeValue = node(id), let nodeClass = classes[classType(id)] else { throw PythonException(type: "KeyError", message: "'\(id)'") }
        guard let inputsValue = nodeValue[member: "inputs"] else { throw PythonException(type: "KeyError", message: "'inputs'") }
        guard case .object(let inputs) = inputsValue else {
            throw PythonException(type: "TypeError", message: "argument of type '\(Self.pythonTypeName(inputsValue))' is not iterable")
        }
        var errors: [JSONValue] = []
        var valid = true
        for (input, required) in nodeClass.inputs {
            guard let value = inputs.first(where: { $0.0 == input.name })?.1 else {
                if required {
                    errors.append(["type": "required_input_missing", "message": "Required input is missing", "details": .string(input.name), "extra_info": ["input_name": .string(input.name)]])
                }
                continue
            }
            if case .array(let link) = value {
                guard link.count == 2 else {
                    errors.append([
                        "type": "bad_linked_input", "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]", "details": .string(input.name),
                        "extra_info": ["input_name": .string(input.name), "input_config": inputConfig(input), "received_value": value],
                    ])
                    continue
                }
                // Outside ComfyUI's try: a missing node or slot raises to the caller.
                guard case .string(let from) = link[0], node(from) != nil, let fromClass = classes[classType(from)] else {
                    throw PythonException(type: "KeyError", message: link[0].stringValue.map { ComfyJSON.repr(.string($0)) } ?? ComfyJSON.repr(link[0]))
                }
                let slot: Int
                switch link[1] {
                case .integer(let whole): slot = Int(whole)
                case .bool(let flag): slot = flag ? 1 : 0
                default: throw PythonException(type: "TypeError", message: "tuple indices must be integers or slices, not \(Self.pythonTypeName(link[1]))")
                }
                let count = fromClass.returnTypes.count
                guard slot < count, slot >= -count else { throw PythonException(type: "IndexError", message: "tuple index out of range") }
                let received = fromClass.returnTypes[slot < 0 ? count + slot : slot]
                guard Self.compatible(received, input.typeName) else {
                    errors.append([
                        "type": "return_type_mismatch", "message": "Return type mismatch between linked nodes",
                        "details": .string("\(input.name), received_type(\(received)) mismatch input_type(\(input.typeName))"),
                        "extra_info": ["input_name": .string(input.name), "input_config": inputConfig(input), "received_type": .string(received), "linked_node": value],
                    ])
                    continue
                }
                do {
                    let (linkedValid, _) = try validateInputs(from)
                    if !linkedValid { valid = false }
                } catch let exception as PythonException {
                    valid = false
                    record(from, valid: false, reasons: [[
                        "type": "exception_during_inner_validation", "message": "Exception when validating inner node", "details": .string(exception.message),
                        "extra_info": [
                            "input_name": .string(input.name), "input_config": inputConfig(input), "exception_message": .string(exception.message),
                            "exception_type": .string(exception.type), "traceback": .array([]), "linked_node": value,
                        ],
                    ]])
                }
                continue
            }
            var converted = value
            do {
                converted = try Self.convert(value, to: input.kind)
            } catch let exception as PythonException {
                errors.append([
                    "type": "invalid_input_type", "message": .string("Failed to convert an input value to a \(input.typeName) value"),
                    "details": .string("\(input.name), \(ComfyJSON.str(value)), \(exception.message)"),
                    "extra_info": ["input_name": .string(input.name), "input_config": inputConfig(input), "received_value": value, "exception_message": .string(exception.message)],
                ])
                continue
            }
            if nodeClass.customValidated.contains(input.name) {
                // LoadImage's VALIDATE_INPUTS: the file must exist in the input folder.
                if let name = converted.stringValue, inputFiles().contains(name) { continue }
                errors.append([
                    "type": "custom_validation_failed", "message": "Custom validation failed for node",
                    "details": .string("\(input.name) - Invalid image file: \(ComfyJSON.str(converted))"), "extra_info": ["input_name": .string(input.name)],
                ])
                continue
            }
            if let minimum = input.option("min"), Self.compare(converted, minimum) == .orderedAscending {
                errors.append([
                    "type": "value_smaller_than_min", "message": .string("Value \(ComfyJSON.str(converted)) smaller than min of \(ComfyJSON.str(minimum))"),
                    "details": .string(input.name), "extra_info": ["input_name": .string(input.name), "input_config": inputConfig(input), "received_value": converted],
                ])
                continue
            }
            if let maximum = input.option("max"), Self.compare(converted, maximum) == .orderedDescending {
                errors.append([
                    "type": "value_bigger_than_max", "message": .string("Value \(ComfyJSON.str(converted)) bigger than max of \(ComfyJSON.str(maximum))"),
                    "details": .string(input.name), "extra_info": ["input_name": .string(input.name), "input_config": inputConfig(input), "received_value": converted],
                ])
                continue
            }
            if let choices = choices(input), !choices.contains(converted) {
                let config: JSONValue = .array([.array(choices), .object(input.options)])
                // ComfyUI does not send back long lists (model folders can hold thousands).
                let long = choices.count > 20
                let list = long ? "(list of length \(choices.count))" : ComfyJSON.repr(.array(choices))
                errors.append([
                    "type": "value_not_in_list", "message": "Value not in list",
                    "details": .string("\(input.name): '\(ComfyJSON.str(converted))' not in \(list)"),
                    "extra_info": ["input_name": .string(input.name), "input_config": long ? .null : config, "received_value": converted],
                ])
                continue
            }
        }
        let result = (errors.isEmpty && valid, errors)
        record(id, valid: result.0, reasons: errors)
        return result
    }

    func choices(_ input: ComfyInput) -> [JSONValue]? {
        switch input.kind {
        case .choices(let names): names.map { .string($0) }
        case .models(let kind): modelFiles(kind).map { .string($0) }
        case .inputFiles: inputFiles().map { .string($0) }
        default: nil
        }
    }

    /// `(input_type, extra_info)` as ComfyUI returns it in `input_config`.
    func inputConfig(_ input: ComfyInput) -> JSONValue {
        let type: JSONValue = choices(input).map { .array($0) } ?? .string(input.typeName)
        return .array([type, .object(input.options)])
    }

    /// `validate_node_input`: equal types, `*`, or overlapping comma-separated unions.
    static func compatible(_ received: String, _ expected: String) -> Bool {
        if received == expected || received == "*" || expected == "*" { return true }
        let left = Set(received.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let right = Set(expected.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        return (left.count > 1 || right.count > 1) && (left.isSubset(of: right) || right.isSubset(of: left))
    }

    /// `int(val)`, `float(val)`, `str(val)`, `bool(val)` as ComfyUI applies them before the range checks.
    static func convert(_ value: JSONValue, to kind: ComfyInput.Kind) throws -> JSONValue {
        switch kind {
        case .int:
            switch value {
            case .integer, .unsigned: return value
            case .bool(let flag): return .integer(flag ? 1 : 0)
            case .number(let real):
                guard real.isFinite else { throw PythonException(type: "OverflowError", message: "cannot convert float infinity to integer") }
                return .integer(Int64(real.rounded(.towardZero)))
            case .string(let text):
                let trimmed = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
                if let whole = Int64(trimmed) { return .integer(whole) }
                throw PythonException(type: "ValueError", message: "invalid literal for int() with base 10: \(ComfyJSON.repr(value))")
            default:
                throw PythonException(type: "TypeError", message: "int() argument must be a string, a bytes-like object or a real number, not '\(pythonTypeName(value))'")
            }
        case .float:
            switch value {
            case .integer(let whole): return .number(Double(whole))
            case .unsigned(let whole): return .number(Double(whole))
            case .number: return value
            case .bool(let flag): return .number(flag ? 1 : 0)
            case .string(let text):
                if let real = Double(text.trimmingCharacters(in: .whitespaces)) { return .number(real) }
                throw PythonException(type: "ValueError", message: "could not convert string to float: \(ComfyJSON.repr(value))")
            default:
                throw PythonException(type: "TypeError", message: "float() argument must be a string or a real number, not '\(pythonTypeName(value))'")
            }
        case .string: return .string(ComfyJSON.str(value))
        case .boolean:
            switch value {
            case .bool: return value
            case .integer(let whole): return .bool(whole != 0)
            case .unsigned(let whole): return .bool(whole != 0)
            case .number(let real): return .bool(real != 0)
            case .string(let text): return .bool(!text.isEmpty)
            case .array(let elements): return .bool(!elements.isEmpty)
            case .object(let members): return .bool(!members.isEmpty)
            case .null: return .bool(false)
            }
        default: return value
        }
    }

    static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .integer(let whole): Double(whole)
        case .unsigned(let whole): Double(whole)
        case .number(let real): real
        case .bool(let flag): flag ? 1 : 0
        default: nil
        }
    }

    static func compare(_ left: JSONValue, _ right: JSONValue) -> ComparisonResult? {
        if case .integer(let a) = left, case .integer(let b) = right { return a < b ? .orderedAscending : (a > b ? .orderedDescending : .orderedSame) }
        if case .unsigned(let a) = left, case .unsigned(let b) = right { return a < b ? .orderedAscending : (a > b ? .orderedDescending : .orderedSame) }
        if case .integer(let a) = left, case .unsigned(let b) = right { return a < 0 || UInt64(a) < b ? .orderedAscending : (UInt64(a) > b ? .orderedDescending : .orderedSame) }
        if case .unsigned(let a) = left, case .integer(let b) = right { return b < 0 || a > UInt64(b) ? .orderedDescending : (a < UInt64(b) ? .orderedAscending : .orderedSame) }
        guard let a = number(left), let b = number(right) else { return nil }
        return a < b ? .orderedAscending : (a > b ? .orderedDescending : .orderedSame)
    }

    static func pythonTypeName(_ value: JSONValue) -> String {
        switch value {
        case .object: "dict"
        case .array: "list"
        case .string: "str"
        case .integer, .unsigned: "int"
        case .number: "float"
        case .bool: "bool"
        case .null: "NoneType"
        }
    }
}
