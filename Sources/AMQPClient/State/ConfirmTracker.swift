/// A `basic.return` as received, before it is matched to the publish it belongs to.
struct ReturnInfo: Sendable, Hashable {
    var replyCode: Int
    var replyText: String
    var exchange: String
    var routingKey: String
}

/// Publisher-confirm bookkeeping for one channel in confirm mode. Pure: no I/O.
///
/// Each publish gets the next sequence number (the delivery tag the broker will ack) and the
/// token of whoever waits for it. `basic.ack`/`basic.nack` settle one tag or, with `multiple`,
/// every pending tag up to it. RabbitMQ sends a mandatory message's `basic.return` before the
/// `basic.ack` for that message, and flushes confirms after every command it handles, so the
/// next ack/nack after a return carries the returned message's tag: the tracker holds a
/// return until then and reports that tag as returned rather than acked.
struct ConfirmTracker {
    enum Outcome: Hashable {
        case acked
        case nacked
        case returned(ReturnInfo)
    }

    struct Settlement: Hashable {
        var sequence: UInt64
        var token: Int
        var outcome: Outcome
    }

    private(set) var nextSequence: UInt64 = 1
    private var owners: [UInt64: Int] = [:]
    private var lowestPending: UInt64 = 1
    private var pendingReturns: [ReturnInfo] = []

    var pendingCount: Int { owners.count }

    /// Records a publish about to be sent and returns its sequence number.
    mutating func register(token: Int) -> UInt64 {
        let sequence = nextSequence
        nextSequence += 1
        owners[sequence] = token
        return sequence
    }

    /// A complete `basic.return` (method, header and body) arrived.
    mutating func returned(_ info: ReturnInfo) {
        pendingReturns.append(info)
    }

    /// A `basic.ack` (`ack == true`) or `basic.nack` arrived.
    mutating func settle(tag: UInt64, multiple: Bool, ack: Bool) -> [Settlement] {
        let returnedInfo = pendingReturns.isEmpty ? nil : pendingReturns.removeFirst()
        var settled: [Settlement] = []
        let upper = (multiple && tag == 0) ? nextSequence - 1 : tag
        let lower = multiple ? lowestPending : tag
        if lower <= upper {
            for sequence in lower...upper {
                guard let token = owners.removeValue(forKey: sequence) else { continue }
                var outcome: Outcome = ack ? .acked : .nacked
                if sequence == upper, let returnedInfo { outcome = .returned(returnedInfo) }
                settled.append(Settlement(sequence: sequence, token: token, outcome: outcome))
            }
        }
        while lowestPending < nextSequence && owners[lowestPending] == nil {
            lowestPending += 1
        }
        return settled
    }

    /// The channel closed: nothing pending will be confirmed. Returns the waiting tokens and
    /// starts over (a reopened channel numbers its publishes from 1 again).
    mutating func reset() -> Set<Int> {
        let tokens = Set(owners.values)
        self = ConfirmTracker()
        return tokens
    }
}
