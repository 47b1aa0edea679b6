import Foundation

/// A server's `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. The wait it
/// asks for is honoured up to `cap`, so a hostile or broken server cannot park a pod for
/// hours; a value that is neither form is ignored.
public enum RetryAfter {
    public static func delay(_ value: String?, now: Date = Date(), cap: Duration = .seconds(60)) -> Duration? {
        guard let text = value?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        let seconds: Double
        if text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber) {
            seconds = Double(text.prefix(9)) ?? 0
        } else if let date = httpDate(text) {
            seconds = max(0, date.timeIntervalSince(now))
        } else {
            return nil
        }
        return min(cap, .milliseconds(Int64(seconds * 1000)))
    }

    /// IMF-fixdate, the form servers must send ("Sun, 06 Nov 1994 08:49:37 GMT").
    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text)
    }
}
