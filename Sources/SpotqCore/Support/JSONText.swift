import Foundation

/// Names JSON values the way error messages should ("string", "object", …), on top of
/// Foundation's `JSONSerialization`, where booleans and numbers are both `NSNumber`.
enum JSONText {
    static func typeName(_ value: Any) -> String {
        switch value {
        case is NSNull: "null"
        case is String: "string"
        case is [Any]: "array"
        case is [String: Any]: "object"
        case let number as NSNumber: isBool(number) ? "boolean" : "number"
        default: "\(type(of: value))"
        }
    }

    /// JSON `true`/`false` arrive as a boolean `NSNumber` (Objective-C type `c`).
    static func isBool(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }

    /// A JSON number written without a fraction or exponent that fits an `Int`.
    static func wholeNumber(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, !isBool(number) else { return nil }
        let type = String(cString: number.objCType)
        guard type != "d", type != "f" else { return nil }
        return Int(number.stringValue)
    }

    /// Foundation's JSON errors carry the position in their debug description only.
    static func describe(_ error: any Error) -> String {
        let nsError = error as NSError
        if let detail = nsError.userInfo[NSDebugDescriptionErrorKey] as? String { return detail }
        return String(describing: error)
    }
}
