import CNftables
import Foundation
import PortsentryShared
import SensorCore

/// Blocks in nftables through libnftables, in-process: the project's own `inet portsentry`
/// table, hash sets for single hosts (IPv4, IPv6) and interval sets for prefixes, each
/// element carrying its own timeout so the kernel lifts a block on time even if the sensor
/// is gone. One drop rule per set. Every `apply` is one transaction. No other table is touched.
final class NftablesFirewall: FirewallBackend {
    let name = "nftables"
    static let table = "inet portsentry"
    /// Which sets this instance owns: the sensor's own blocks, or the controller's fleet list
    /// (separate sets, so an unban from the controller never lifts a local block or the reverse).
    let list: BlockListKind
    /// Elements per `add element` statement: large statements are what make bulk loads fast,
    /// and 5,000 keeps each netlink message comfortably small.
    static let elementsPerStatement = 5000

    private let context: OpaquePointer
    /// The table is created on first use: a log-only sensor never touches the firewall.
    private var prepared = false

    /// PROTECT_PORTS: established sessions on them pass before the fleet sets are consulted.
    let sessionPorts: PortSet

    init(list: BlockListKind = .local, sessionPorts: PortSet = PortSet()) throws(FirewallError) {
        self.list = list
        self.sessionPorts = sessionPorts
        guard let ctx = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else { throw FirewallError("libnftables: cannot create a context") }
        context = ctx
        nft_ctx_buffer_output(ctx)
        nft_ctx_buffer_error(ctx)
    }

    deinit { nft_ctx_free(context) }

    /// The table, its sets and chain. An admin's established session on PROTECT_PORTS is
    /// accepted before the fleet sets: an entry that arrives from the controller covering the
    /// admin (forged evidence) can never cut a live session, even in the moment before the
    /// sensor notices and takes the entry out. Local blocks are checked against live sessions
    /// when they are made, so they come first.
    var setup: String {
        var rules = Self.setupHead
        if !sessionPorts.isEmpty {
            let ports = sessionPorts.ranges.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            rules += "\nadd rule \(Self.table) input tcp dport { \(ports.joined(separator: ", ")) } ct state established accept comment \"live sessions on PROTECT_PORTS\""
        }
        return rules + "\n" + Self.setupFleet
    }

    static let setupHead = """
        add table \(table)
        add set \(table) blocked4 { type ipv4_addr; flags timeout; comment "hosts blocked by portsentry"; }
        add set \(table) blocked6 { type ipv6_addr; flags timeout; comment "hosts blocked by portsentry"; }
        add set \(table) blocked4_nets { type ipv4_addr; flags interval, timeout; comment "networks blocked by portsentry"; }
        add set \(table) blocked6_nets { type ipv6_addr; flags interval, timeout; comment "networks blocked by portsentry"; }
        add set \(table) fleet4 { type ipv4_addr; flags timeout; comment "hosts on the controller's fleet-wide block list"; }
        add set \(table) fleet6 { type ipv6_addr; flags timeout; comment "hosts on the controller's fleet-wide block list"; }
        add set \(table) fleet4_nets { type ipv4_addr; flags interval, timeout; comment "networks on the controller's fleet-wide block list"; }
        add set \(table) fleet6_nets { type ipv6_addr; flags interval, timeout; comment "networks on the controller's fleet-wide block list"; }
        add chain \(table) input { type filter hook input priority filter - 10; policy accept; }
        flush chain \(table) input
        add rule \(table) input ip saddr @blocked4 counter drop comment "blocked hosts"
        add rule \(table) input ip6 saddr @blocked6 counter drop comment "blocked hosts"
        add rule \(table) input ip saddr @blocked4_nets counter drop comment "blocked networks"
        add rule \(table) input ip6 saddr @blocked6_nets counter drop comment "blocked networks"
        """

    static let setupFleet = """
        add rule \(table) input ip saddr @fleet4 counter drop comment "fleet-wide block list"
        add rule \(table) input ip6 saddr @fleet6 counter drop comment "fleet-wide block list"
        add rule \(table) input ip saddr @fleet4_nets counter drop comment "fleet-wide block list"
        add rule \(table) input ip6 saddr @fleet6_nets counter drop comment "fleet-wide block list"
        """

    func prepare() throws(FirewallError) {
        try run(setup)
        prepared = true
    }

    func apply(_ changes: [FirewallChange]) throws(FirewallError) {
        if !prepared { try prepare() }
        let script = Self.script(for: changes, list: list)
        if !script.isEmpty { try run(script) }
    }

    func replaceAll(_ blocks: [(IPPrefix, seconds: Int64?)]) throws(FirewallError) {
        let flush = list.setNames.map { "flush set \(Self.table) \($0)" }
        let adds = Self.script(for: blocks.map { .add($0.0, seconds: $0.seconds) }, list: list)
        try run(([setup] + flush + (adds.isEmpty ? [] : [adds])).joined(separator: "\n"))
        prepared = true
    }

    func removeAll() throws(FirewallError) {
        try run("add table \(Self.table)\ndelete table \(Self.table)")
        prepared = false
    }

    /// Removals first (an extension is a removal and an add of the same element in one
    /// transaction: re-adding an existing element would keep its old timeout).
    static func script(for changes: [FirewallChange], list: BlockListKind = .local) -> String {
        var removals: [String: [String]] = [:]
        var additions: [String: [String]] = [:]
        for change in changes {
            switch change {
            case .remove(let p):
                removals[set(for: p, list: list), default: []].append(element(p))
            case .add(let p, let seconds):
                additions[set(for: p, list: list), default: []].append(element(p) + (seconds.map { " timeout \(max($0, 1))s" } ?? ""))
            }
        }
        var lines: [String] = []
        for (verb, groups) in [("delete", removals), ("add", additions)] {
            for (set, elements) in groups.sorted(by: { $0.key < $1.key }) {
                var start = 0
                while start < elements.count {
                    let chunk = elements[start..<min(start + elementsPerStatement, elements.count)]
                    lines.append("\(verb) element \(table) \(set) { \(chunk.joined(separator: ", ")) }")
                    start += elementsPerStatement
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func set(for p: IPPrefix, list: BlockListKind = .local) -> String {
        let family = p.network.isIPv4 ? "4" : "6"
        return p.isHost ? "\(list.setStem)\(family)" : "\(list.setStem)\(family)_nets"
    }

    /// What this instance's sets hold now, read back from the kernel (for drift checks).
    func entries() throws(FirewallError) -> [BlockEntry] {
        if !prepared { try prepare() }
        nft_ctx_output_set_flags(context, UInt32(NFT_CTX_OUTPUT_JSON))
        defer { nft_ctx_output_set_flags(context, 0) }
        var out: [BlockEntry] = []
        let now = Int64(Date().timeIntervalSince1970)
        for set in list.setNames {
            let text = try run("list set \(Self.table) \(set)")
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                  let items = object["nftables"] as? [[String: Any]] else { throw FirewallError("nftables: cannot read set \(set)") }
            for item in items {
                guard let s = item["set"] as? [String: Any], let elements = s["elem"] as? [Any] else { continue }
                for element in elements {
                    var value: Any = element
                    var expires: Int64 = 0
                    if let wrapped = (element as? [String: Any])?["elem"] as? [String: Any] {
                        value = wrapped["val"] ?? ""
                        if let left = (wrapped["expires"] as? NSNumber)?.int64Value { expires = now + left }
                    }
                    if let text = value as? String, let a = IPAddress(text) {
                        out.append(BlockEntry(prefix: IPPrefix(host: a), expires: expires))
                    } else if let p = (value as? [String: Any])?["prefix"] as? [String: Any], let addr = (p["addr"] as? String).flatMap(IPAddress.init),
                              let len = (p["len"] as? NSNumber)?.intValue {
                        out.append(BlockEntry(prefix: IPPrefix(addr, length: len), expires: expires))
                    }
                }
            }
        }
        return out
    }

    static func element(_ p: IPPrefix) -> String {
        p.isHost ? p.network.description : "\(p.network)/\(p.length)"
    }

    @discardableResult
    private func run(_ script: String) throws(FirewallError) -> String {
        let rc = nft_run_cmd_from_buffer(context, script)
        let output = nft_ctx_get_output_buffer(context).map { String(cString: $0) } ?? ""
        if rc != 0 {
            let error = nft_ctx_get_error_buffer(context).map { String(cString: $0) } ?? "unknown error"
            throw FirewallError("nftables: \(error.split(separator: "\n").first.map(String.init) ?? error)")
        }
        return output
    }
}
