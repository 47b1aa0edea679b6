/// `count` bytes from the system's secure random generator, as lowercase hex: for passwords
/// and tokens spotq makes (safe in URLs and headers without encoding).
public func randomHex(bytes count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
}
