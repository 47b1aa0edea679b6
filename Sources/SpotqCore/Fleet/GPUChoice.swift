/// Price awareness (seed 001): choose the GPU type by expected USD per image from live
/// prices, and go on-demand when spot gets silly.
public enum GPUChoice {
    /// A GPU type spotq may rent, with its throughput.
    public struct Candidate: Sendable, Equatable, Codable {
        public var gpuType: String
        /// Configured, or measured from finished pods when there is enough history.
        public var imagesPerHour: Double

        public init(gpuType: String, imagesPerHour: Double) {
            self.gpuType = gpuType
            self.imagesPerHour = imagesPerHour
        }
    }

    /// A provider's current prices for one GPU type (USD per GPU-hour).
    public struct Price: Sendable, Equatable, Codable {
        public var gpuType: String
        /// Lowest accepted spot bid; nil when the type has no spot market now.
        public var spotMinimumBid: Double?
        /// On-demand price; nil when none is offered.
        public var onDemand: Double?
        /// `High`, `Medium`, `Low`, `None`.
        public var stock: String?

        public init(gpuType: String, spotMinimumBid: Double?, onDemand: Double?, stock: String? = nil) {
            self.gpuType = gpuType
            self.spotMinimumBid = spotMinimumBid
            self.onDemand = onDemand
            self.stock = stock
        }
    }

    public struct Decision: Sendable, Equatable {
        public var gpuType: String
        public var interruptible: Bool
        /// Expected USD per image, interruption-adjusted for spot.
        public var usdPerImage: Double
        /// Spot prices passed the configured multiple: say so loudly.
        public var alert: String?
    }

    /// Cheapest expected USD per image among the candidates with a price. Spot is priced at
    /// max(minimum bid, base bid), adjusted for interruptions; a spot price above
    /// `spotAlertMultiple` × the base bid is not used, and on-demand is taken with an alert
    /// (also when no spot market is left). Pass prices without on-demand when the operator
    /// does not allow it: then nil means "wait".
    public static func choose(
        candidates: [Candidate], prices: [Price], baseBid: Double, spotAlertMultiple: Double,
        interruptionsPerHour: Double, recoveryHours: Double
    ) -> Decision? {
        var best: Decision?
        var alerts: [String] = []
        var anySpot = false
        for candidate in candidates where candidate.imagesPerHour > 0 {
            guard let price = prices.first(where: { $0.gpuType == candidate.gpuType }) else { continue }
            var options: [Decision] = []
            if let minimum = price.spotMinimumBid, minimum > 0, price.stock != "None" {
                anySpot = true
                let bid = max(minimum, baseBid)
                if bid > spotAlertMultiple * baseBid {
                    alerts.append("spot \(candidate.gpuType) costs \(bid) USD/h, over \(spotAlertMultiple)× the \(baseBid) USD/h base bid")
                } else {
                    let hourly = PodCost.interruptionAdjusted(priceUSDPerHour: bid, interruptionsPerHour: interruptionsPerHour, recoveryHours: recoveryHours)
                    options.append(Decision(gpuType: candidate.gpuType, interruptible: true, usdPerImage: hourly / candidate.imagesPerHour))
                }
            }
            if let onDemand = price.onDemand, onDemand > 0 {
                options.append(Decision(gpuType: candidate.gpuType, interruptible: false, usdPerImage: onDemand / candidate.imagesPerHour))
            }
            for option in options where best == nil || option.usdPerImage < best!.usdPerImage - 1e-12 {
                best = option
            }
        }
        if var chosen = best, !chosen.interruptible, !alerts.isEmpty || !anySpot {
            chosen.alert = (alerts.isEmpty ? "no spot market for \(candidates.map(\.gpuType).joined(separator: ", "))" : alerts.joined(separator: "; "))
                + "; renting on-demand"
            return chosen
        }
        return best
    }
}
