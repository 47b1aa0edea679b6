/// How far a download has got. Reported on the client's thread: keep the handler short.
public struct DownloadProgress: Sendable, Equatable {
    /// Bytes of the file on disk so far, including any resumed prefix.
    public var receivedBytes: Int64
    /// The whole file's size when known (from the caller or the server).
    public var expectedBytes: Int64?
    /// Where this attempt started: the bytes already on disk that the server did not resend.
    public var resumedFrom: Int64

    public init(receivedBytes: Int64, expectedBytes: Int64?, resumedFrom: Int64) {
        self.receivedBytes = receivedBytes
        self.expectedBytes = expectedBytes
        self.resumedFrom = resumedFrom
    }
}

/// A finished, verified download, now at its destination.
public struct DownloadResult: Sendable, Equatable {
    /// Size of the file at the destination.
    public var totalBytes: Int64
    /// Bytes fetched by this call (less than ``totalBytes`` when resumed).
    public var fetchedBytes: Int64
    /// Bytes reused from an earlier attempt's partial file (0 for a fresh download).
    public var resumedFrom: Int64
    /// SHA-256 of the whole file, lowercase hex.
    public var sha256: String
    /// The final HTTP status: 200, 206 for a resume, 416 when the partial was already whole.
    public var httpStatus: Int

    public init(totalBytes: Int64, fetchedBytes: Int64, resumedFrom: Int64, sha256: String, httpStatus: Int) {
        self.totalBytes = totalBytes
        self.fetchedBytes = fetchedBytes
        self.resumedFrom = resumedFrom
        self.sha256 = sha256
        self.httpStatus = httpStatus
    }
}
