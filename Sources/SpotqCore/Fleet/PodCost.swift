import Foundation

/// Cost accounting: a pod costs its hourly price while it runs, and its volume's storage
/// from the moment it is rented until it is terminated (a stopped or reclaimed pod keeps
/// its volume, and that is billed).
public enum PodCost {
    public static let hoursPerMonth = 730.0

    /// USD accrued over `hours`.
    public static func accrued(hours: Double, running: Bool, priceUSDPerHour: Double, volumeGB: Double, storageUSDPerGBMonth: Double) -> Double {
        guard hours > 0 else { return 0 }
        let gpu = running ? priceUSDPerHour * hours : 0
        let storage = volumeGB * storageUSDPerGBMonth / hoursPerMonth * hours
        return gpu + storage
    }

    /// The seed's interruption-adjusted hourly cost: the price, plus the share of an hour
    /// lost to interruptions (rate per hour) and to the recovery each one costs.
    /// ($0.78 × 1.05) + (3/60 × $0.78) in seed 001 is price 0.78, rate 0.05, recovery 1 h.
    public static func interruptionAdjusted(priceUSDPerHour: Double, interruptionsPerHour: Double, recoveryHours: Double) -> Double {
        priceUSDPerHour * (1 + interruptionsPerHour) + priceUSDPerHour * interruptionsPerHour * recoveryHours
    }
}
