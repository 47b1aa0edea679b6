import PostgresClient
import SpotqCore

// Lifecycle values travel as text parameters; SQL status lists are built from the enums
// (`status = ANY(\(ItemStatus.sources(of: .started).sql))`), never written as literals.

extension ItemStatus: PostgresTextEnum {}
extension BatchStatus: PostgresTextEnum {}
extension PodState: PostgresTextEnum {}
extension FleetPod.ProviderStatus: PostgresTextEnum {}

extension Array where Element: PostgresEncodable {
    /// The values as one `text[]` parameter, for `= ANY(…)`.
    var sql: PostgresArray<Element> { PostgresArray(self) }
}
