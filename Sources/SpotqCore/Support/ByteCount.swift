/// Byte counts for people, in decimal units as model hosts and GPU clouds quote them
/// (1 GB = 10^9 bytes).
public enum ByteCount {
    public static func format(_ bytes: Int64) -> String {
        let value = Double(bytes)
        switch bytes {
        case ..<1_000: return "\(bytes) B"
        case ..<1_000_000: return String(format1: value / 1e3, unit: "kB")
        case ..<1_000_000_000: return String(format1: value / 1e6, unit: "MB")
        default: return String(format2: value / 1e9, unit: "GB")
        }
    }
}

extension String {
    init(format1 value: Double, unit: String) {
        self = "\((value * 10).rounded() / 10) \(unit)"
    }

    init(format2 value: Double, unit: String) {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        self = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) \(unit)"
    }
}
