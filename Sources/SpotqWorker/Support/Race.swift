/// Runs `operation` until it returns or a termination notice is announced; nil when the
/// notice came first (the operation is then cancelled and waited for).
func unlessNoticed<T: Sendable>(_ notice: TerminationNotice, _ operation: @escaping @Sendable () async throws -> T) async throws -> T? {
    if notice.isSet { return nil }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            await notice.wait()
            try Task.checkCancellation()
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}
