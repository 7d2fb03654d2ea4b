import Foundation
import PortsentryShared
import SensorCore

/// For hosts without nftables: ipset sets (hash:ip for hosts, hash:net for networks, one per
/// family, each element with its own timeout) and one iptables/ip6tables DROP rule per set
/// in a chain of our own, jumped to from INPUT. Changes are loaded with one `ipset restore`.
final class IptablesFirewall: FirewallBackend {
    let name = "iptables"
    /// Which sets this instance fills: the sensor's own, or the controller's fleet list.
    let list: BlockListKind

    /// PROTECT_PORTS: established sessions on them return from the chain before the fleet sets
    /// (see `NftablesFirewall.setup`).
    let sessionPorts: PortSet

    init(list: BlockListKind = .local, sessionPorts: PortSet = PortSet()) {
        self.list = list
        self.sessionPorts = sessionPorts
    }
    static let chain = "PORTSENTRY"
    /// ipset's largest timeout (about 24.8 days); longer blocks are re-asserted on restart.
    static let maxTimeout: Int64 = 2_147_483
    /// Elements per set: far beyond a host's needs, the same bound for every set.
    static let maxElements = 1_048_576
    static let timeoutSeconds: Int64 = 30

    static func sets(_ list: BlockListKind) -> [(name: String, type: String, family: String)] {
        let stem = stem(list)
        return [("\(stem)4", "hash:ip", "inet"), ("\(stem)6", "hash:ip", "inet6"),
                ("\(stem)4_nets", "hash:net", "inet"), ("\(stem)6_nets", "hash:net", "inet6")]
    }

    static func stem(_ list: BlockListKind) -> String { list == .local ? "portsentry" : "psfleet" }

    /// Both lists' sets: whichever instance prepares first sets up the chain for both.
    static let allSets = sets(.local) + sets(.fleet)

    private var prepared = false

    func prepare() throws(FirewallError) {
        prepared = true
        var script = ""
        for s in Self.allSets {
            script += "create \(s.name) \(s.type) family \(s.family) timeout 0 maxelem \(Self.maxElements) -exist\n"
        }
        try ipset(script)
        for (tool, family) in [("/usr/sbin/iptables", "4"), ("/usr/sbin/ip6tables", "6")] {
            _ = CommandRunner.run([tool, "-w", "-N", Self.chain], timeoutSeconds: Self.timeoutSeconds)  // exists: fine
            try check(CommandRunner.run([tool, "-w", "-F", Self.chain], timeoutSeconds: Self.timeoutSeconds), tool)
            for set in ["portsentry\(family)", "portsentry\(family)_nets", "psfleet\(family)", "psfleet\(family)_nets"] {
                if set == "psfleet\(family)", !sessionPorts.isEmpty {
                    // multiport takes at most 15 ports or ranges; a longer PROTECT_PORTS is cut (the
                    // sensor still takes covering entries out when it sees the session).
                    let ports = sessionPorts.ranges.prefix(15).map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound):\($0.upperBound)" }
                    try check(CommandRunner.run([tool, "-w", "-A", Self.chain, "-p", "tcp", "-m", "multiport", "--dports", ports.joined(separator: ","),
                                                 "-m", "conntrack", "--ctstate", "ESTABLISHED", "-j", "RETURN"],
                                                timeoutSeconds: Self.timeoutSeconds), tool)
                }
                try check(CommandRunner.run([tool, "-w", "-A", Self.chain, "-m", "set", "--match-set", set, "src", "-j", "DROP"],
                                            timeoutSeconds: Self.timeoutSeconds), tool)
            }
            let jump = [tool, "-w", "-C", "INPUT", "-j", Self.chain]
            if !CommandRunner.run(jump, timeoutSeconds: Self.timeoutSeconds).succeeded {
                try check(CommandRunner.run([tool, "-w", "-I", "INPUT", "1", "-j", Self.chain], timeoutSeconds: Self.timeoutSeconds), tool)
            }
        }
    }

    func apply(_ changes: [FirewallChange]) throws(FirewallError) {
        if !prepared { try prepare() }
        var script = ""
        for c in changes {
            switch c {
            case .remove(let p): script += "del \(Self.set(for: p, list: list)) \(element(p)) -exist\n"
            case .add(let p, let seconds):
                script += "add \(Self.set(for: p, list: list)) \(element(p)) timeout \(min(seconds ?? 0, Self.maxTimeout)) -exist\n"
            }
        }
        if !script.isEmpty { try ipset(script) }
    }

    func replaceAll(_ blocks: [(IPPrefix, seconds: Int64?)]) throws(FirewallError) {
        try prepare()
        // Fill temporary sets and swap them in: the live sets are never empty meanwhile.
        var script = ""
        for s in Self.sets(list) {
            script += "create \(s.name)_new \(s.type) family \(s.family) timeout 0 maxelem \(Self.maxElements) -exist\n"
            script += "flush \(s.name)_new\n"
        }
        for (p, seconds) in blocks {
            script += "add \(Self.set(for: p, list: list))_new \(element(p)) timeout \(min(seconds ?? 0, Self.maxTimeout)) -exist\n"
        }
        for s in Self.sets(list) { script += "swap \(s.name)_new \(s.name)\ndestroy \(s.name)_new\n" }
        try ipset(script)
    }

    func removeAll() throws(FirewallError) {
        for tool in ["/usr/sbin/iptables", "/usr/sbin/ip6tables"] {
            _ = CommandRunner.run([tool, "-w", "-D", "INPUT", "-j", Self.chain], timeoutSeconds: Self.timeoutSeconds)
            _ = CommandRunner.run([tool, "-w", "-F", Self.chain], timeoutSeconds: Self.timeoutSeconds)
            _ = CommandRunner.run([tool, "-w", "-X", Self.chain], timeoutSeconds: Self.timeoutSeconds)
        }
        for s in Self.allSets { _ = CommandRunner.run(["/usr/sbin/ipset", "destroy", s.name], timeoutSeconds: Self.timeoutSeconds) }
    }

    static func set(for p: IPPrefix, list: BlockListKind = .local) -> String {
        let family = p.network.isIPv4 ? "4" : "6"
        return p.isHost ? "\(stem(list))\(family)" : "\(stem(list))\(family)_nets"
    }

    /// What this instance's sets hold now (for drift checks): `ipset save` lines.
    func entries() throws(FirewallError) -> [BlockEntry] {
        if !prepared { try prepare() }
        let now = Int64(Date().timeIntervalSince1970)
        var out: [BlockEntry] = []
        // CommandRunner keeps only a bounded stderr: the listing goes through a private file.
        let file = NSTemporaryDirectory() + "portsentry-ipset-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(file) }
        for s in Self.sets(list) {
            try check(CommandRunner.shell("umask 077; /usr/sbin/ipset save \(s.name) > \(file)", timeoutSeconds: Self.timeoutSeconds), "ipset save")
            let text = (try? TextFile.read(file, limit: 256 << 20)) ?? ""
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count >= 3, f[0] == "add", let p = try? IPPrefix(parsing: f[2]) else { continue }
                var expires: Int64 = 0
                if let i = f.firstIndex(of: "timeout"), i + 1 < f.count, let left = Int64(f[i + 1]), left > 0 { expires = now + left }
                out.append(BlockEntry(prefix: p, expires: expires))
            }
        }
        return out
    }

    private func element(_ p: IPPrefix) -> String { p.isHost ? p.network.description : "\(p.network)/\(p.length)" }

    private func ipset(_ script: String) throws(FirewallError) {
        try check(CommandRunner.run(["/usr/sbin/ipset", "restore"], timeoutSeconds: Self.timeoutSeconds, stdin: script), "ipset restore")
    }

    private func check(_ r: CommandRunner.Result, _ what: String) throws(FirewallError) {
        guard r.succeeded else { throw FirewallError("\(what) \(r.summary)\(r.stderr.isEmpty ? "" : ": \(r.stderr)")") }
    }
}
