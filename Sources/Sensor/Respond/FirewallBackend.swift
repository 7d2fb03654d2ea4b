import PortsentryShared

/// One change to the kernel's block list. `seconds` nil means permanent.
enum FirewallChange: Equatable, Sendable {
    case add(IPPrefix, seconds: Int64?)
    case remove(IPPrefix)
}

/// Where blocks are enforced. Implementations batch every call into one kernel transaction
/// where the backend allows it, and touch nothing but their own table or sets.
protocol FirewallBackend: AnyObject {
    var name: String { get }
    /// Creates (or re-asserts) the backend's own table/sets/rules; safe to call again.
    func prepare() throws(FirewallError)
    func apply(_ changes: [FirewallChange]) throws(FirewallError)
    /// Makes the kernel hold exactly these blocks, in one transaction (start-up restore and
    /// resynchronisation): no moment without the blocks that should be there.
    func replaceAll(_ blocks: [(IPPrefix, seconds: Int64?)]) throws(FirewallError)
    /// Removes every block and the backend's own rules (only on an explicit flush).
    func removeAll() throws(FirewallError)
}

/// Whose blocks a backend instance holds: the sensor's own, or the controller's fleet-wide
/// list. Each has its own kernel sets.
enum BlockListKind: Sendable {
    case local, fleet

    var setStem: String { self == .local ? "blocked" : "fleet" }
    var setNames: [String] { ["4", "6", "4_nets", "6_nets"].map { setStem + $0 } }
}

struct FirewallError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Logs what it would do and changes nothing (`--dry-run`, `DRY_RUN="1"`).
final class DryRunFirewall: FirewallBackend {
    let name = "dry-run"
    private(set) var applied: [FirewallChange] = []
    func prepare() {}
    func apply(_ changes: [FirewallChange]) { applied.append(contentsOf: changes) }
    func replaceAll(_ blocks: [(IPPrefix, seconds: Int64?)]) { applied = blocks.map { .add($0.0, seconds: $0.seconds) } }
    func removeAll() { applied.removeAll() }
}
