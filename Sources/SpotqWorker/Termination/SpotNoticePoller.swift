import CurlClient
import Foundation
import Logging
import ServiceLifecycle

/// Polls an AWS-style instance metadata service for a spot interruption notice
/// (`GET <base>/latest/meta-data/spot/instance-action`, 404 while none is pending) and turns
/// one into a ``TerminationNotice``. Speaks IMDSv2 (a session token from
/// `PUT /latest/api/token`) and falls back to plain GETs where no token is offered. A service
/// of its own with its own HTTP client, so polling never waits on work or work on polling.
struct SpotNoticePoller: Service {
    let baseURL: String
    let http: HTTPClient
    let notice: TerminationNotice
    let logger: Logger
    /// AWS recommends every 5 s.
    var interval: Duration = .seconds(5)
    /// Kept back from the announced time, so the last upload ends before the instance does.
    var safetyMargin: Duration = .seconds(5)

    static let tokenTTLSeconds = 21_600

    /// Polls until a notice (its own or another's), then waits for the group's shutdown.
    func run() async throws {
        await untilGracefulShutdown { await watch() }
    }

    func watch() async {
        var token: String? = nil
        var reportedUnreachable = false
        while !Task.isCancelled, !notice.isSet {
            if token == nil { token = await sessionToken() }
            var headers: HTTPHeaders = [:]
            if let token { headers.add(name: "X-aws-ec2-metadata-token", value: token) }
            do {
                let answer = try await http.send(HTTPRequest(url: baseURL + "/latest/meta-data/spot/instance-action", headers: headers, timeout: .seconds(2)))
                reportedUnreachable = false
                switch answer.status {
                case 200:
                    let (action, left) = Self.parse(answer.body, now: Date())
                    let within = max(.zero, (left ?? .seconds(120)) - safetyMargin)
                    logger.warning("worker: the metadata service announced a spot interruption", metadata: ["action": "\(action)", "seconds_left": "\(left.map { "\($0.components.seconds)" } ?? "unknown")"])
                    notice.announce(reason: "spot notice (\(action))", within: within)
                    return
                case 401:
                    token = nil  // expired: a fresh one next round
                default:
                    break  // 404: nothing pending
                }
            } catch {
                if !reportedUnreachable {
                    logger.warning("worker: the spot metadata service does not answer; still polling", metadata: ["error": "\(error)"])
                    reportedUnreachable = true
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// An IMDSv2 session token, or nil where the service does not hand them out (IMDSv1).
    func sessionToken() async -> String? {
        var headers: HTTPHeaders = [:]
        headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "\(Self.tokenTTLSeconds)")
        guard let answer = try? await http.send(HTTPRequest(method: .put, url: baseURL + "/latest/api/token", headers: headers, body: [], timeout: .seconds(2))),
              answer.status == 200
        else { return nil }
        let token = String(decoding: answer.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }

    /// The action and the time left before it, from `{"action": "terminate", "time": "…Z"}`.
    static func parse(_ body: [UInt8], now: Date) -> (action: String, left: Duration?) {
        let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        let action = object?["action"] as? String ?? "terminate"
        guard let text = object?["time"] as? String, let time = ISO8601DateFormatter().date(from: text) else { return (action, nil) }
        return (action, .milliseconds(Int64(max(0, time.timeIntervalSince(now)) * 1_000)))
    }
}
