import PortsentryShared

/// For hosts without nftables: ipset sets (hash:ip for hosts, hash:net for networks, one per
/// family, each element with its own timeout) and one iptables/ip6tables DROP rule per set
/// in a chain of our own, jumped to from INPUT. Changes are loaded with one `ipset restore`.
final class IptablesFirewall: FirewallBackend {
    let name = "iptables"
    static let chain = "PORTSENTRY"
    /// ipset's largest timeout (about 24.8 days); longer blocks are re-asserted on restart.
    static let maxTimeout: Int64 = 2_147_483
    /// Elements per set: far beyond a host's needs, the same bound for every set.
    static let maxElements = 1_048_576
    static let timeoutSeconds: Int64 = 30

    static let sets: [(name: String, type: String, family: String)] = [
        ("portsentry4", "hash:ip", "inet"), ("portsentry6", "hash:ip", "inet6"),
        ("portsentry4_nets", "hash:net", "inet"), ("portsentry6_nets", "hash:net", "inet6"),
    ]

    private var prepared = false

    func prepare() throws(FirewallError) {
        prepared = true
        var script = ""
        for s in Self.sets {
            script += "create \(s.name) \(s.type) family \(s.family) timeout 0 maxelem \(Self.maxElements) -exist\n"
        }
        try ipset(script)
        for (tool, family) in [("/usr/sbin/iptables", "4"), ("/usr/sbin/ip6tables", "6")] {
            _ = CommandRunner.run([tool, "-w", "-N", Self.chain], timeoutSeconds: Self.timeoutSeconds)  // exists: fine
            try check(CommandRunner.run([tool, "-w", "-F", Self.chain], timeoutSeconds: Self.timeoutSeconds), tool)
            for set in ["portsentry\(family)", "portsentry\(family)_nets"] {
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
            case .remove(let p): script += "del \(Self.set(for: p)) \(element(p)) -exist\n"
            case .add(let p, let seconds):
                script += "add \(Self.set(for: p)) \(element(p)) timeout \(min(seconds ?? 0, Self.maxTimeout)) -exist\n"
            }
        }
        if !script.isEmpty { try ipset(script) }
    }

    func replaceAll(_ blocks: [(IPPrefix, seconds: Int64?)]) throws(FirewallError) {
        try prepare()
        // Fill temporary sets and swap them in: the live sets are never empty meanwhile.
        var script = ""
        for s in Self.sets {
            script += "create \(s.name)_new \(s.type) family \(s.family) timeout 0 maxelem \(Self.maxElements) -exist\n"
            script += "flush \(s.name)_new\n"
        }
        for (p, seconds) in blocks {
            script += "add \(Self.set(for: p))_new \(element(p)) timeout \(min(seconds ?? 0, Self.maxTimeout)) -exist\n"
        }
        for s in Self.sets { script += "swap \(s.name)_new \(s.name)\ndestroy \(s.name)_new\n" }
        try ipset(script)
    }

    func removeAll() throws(FirewallError) {
        for tool in ["/usr/sbin/iptables", "/usr/sbin/ip6tables"] {
            _ = CommandRunner.run([tool, "-w", "-D", "INPUT", "-j", Self.chain], timeoutSeconds: Self.timeoutSeconds)
            _ = CommandRunner.run([tool, "-w", "-F", Self.chain], timeoutSeconds: Self.timeoutSeconds)
            _ = CommandRunner.run([tool, "-w", "-X", Self.chain], timeoutSeconds: Self.timeoutSeconds)
        }
        for s in Self.sets { _ = CommandRunner.run(["/usr/sbin/ipset", "destroy", s.name], timeoutSeconds: Self.timeoutSeconds) }
    }

    static func set(for p: IPPrefix) -> String {
        let family = p.network.isIPv4 ? "4" : "6"
        return p.isHost ? "portsentry\(family)" : "portsentry\(family)_nets"
    }

    private func element(_ p: IPPrefix) -> String { p.isHost ? p.network.description : "\(p.network)/\(p.length)" }

    private func ipset(_ script: String) throws(FirewallError) {
        try check(CommandRunner.run(["/usr/sbin/ipset", "restore"], timeoutSeconds: Self.timeoutSeconds, stdin: script), "ipset restore")
    }

    private func check(_ r: CommandRunner.Result, _ what: String) throws(FirewallError) {
        guard r.succeeded else { throw FirewallError("\(what) \(r.summary)\(r.stderr.isEmpty ? "" : ": \(r.stderr)")") }
    }
}
