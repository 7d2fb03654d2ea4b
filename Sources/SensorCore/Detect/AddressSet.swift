package import PortsentryShared

/// A set of prefixes with a membership test that costs one hash lookup per distinct
/// prefix length present (at most 129), whatever the number of entries.
package struct AddressSet: Sendable {
    /// Masked networks, grouped by their length over the 128-bit mapped form.
    private var byLength: [(bits: Int, networks: Set<IPAddress>)] = []
    package private(set) var prefixes: [IPPrefix] = []

    package init(_ prefixes: [IPPrefix] = []) {
        for p in prefixes { insert(p) }
    }

    package mutating func insert(_ prefix: IPPrefix) {
        prefixes.append(prefix)
        let bits = prefix.length128
        if let i = byLength.firstIndex(where: { $0.bits == bits }) {
            byLength[i].networks.insert(prefix.network)
        } else {
            byLength.append((bits, [prefix.network]))
            byLength.sort { $0.bits > $1.bits }
        }
    }

    package var isEmpty: Bool { prefixes.isEmpty }
    package var count: Int { prefixes.count }

    @inline(__always)
    package func contains(_ address: IPAddress) -> Bool {
        for group in byLength where group.networks.contains(address.masked(toBits: group.bits)) {
            return true
        }
        return false
    }
}
