/// The seed's spot bids: start at the base bid per GPU and retry +step up to +maxIncrease
/// (0.12, 0.13, … 0.17 USD by default), then follow the fallback.
public struct BidLadder: Sendable, Equatable, Codable {
    public var baseUSDPerGPUHour = 0.12
    public var stepUSD = 0.01
    public var maxIncreaseUSD = 0.05

    public init() {}

    /// Every bid to try, in order, rounded to cents.
    public var bids: [Double] {
        guard stepUSD > 0 else { return [Self.cents(baseUSDPerGPUHour)] }
        var bids: [Double] = []
        var bid = baseUSDPerGPUHour
        while bid <= baseUSDPerGPUHour + maxIncreaseUSD + 1e-9 {
            bids.append(Self.cents(bid))
            bid += stepUSD
        }
        return bids
    }

    public var highest: Double { bids.last ?? baseUSDPerGPUHour }

    static func cents(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}

/// What to do when no spot bid was accepted, or the provider has no spot market.
public enum SpotFallback: String, Sendable, Equatable, Codable {
    /// Try again at the next round (no pod meanwhile).
    case wait
    /// Rent on-demand at the list price, and raise an alert.
    case onDemand = "on-demand"
}
