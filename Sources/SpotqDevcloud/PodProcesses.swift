import Foundation

/// The processes of a devcloud pod's container: those in its process group, read from
/// /proc (what `docker top` shows for a container).
enum PodProcesses {
    struct Process: Sendable {
        var pid: pid_t
        var arguments: [String]
    }

    static func inGroup(_ group: pid_t) -> [Process] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [Process] = []
        for entry in entries {
            guard let pid = pid_t(entry), processGroup(of: pid) == group else { continue }
            let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let arguments = raw.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
            found.append(Process(pid: pid, arguments: arguments))
        }
        return found
    }

    /// Field 5 of /proc/<pid>/stat (after the parenthesised name, which may hold spaces).
    static func processGroup(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields: state, ppid, pgrp, …; a zombie still counts until reaped.
        guard fields.count > 2 else { return nil }
        return pid_t(fields[2])
    }
}
