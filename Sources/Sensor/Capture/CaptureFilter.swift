import PortsentryShared
import SensorCore

/// Builds the kernel (BPF) filter, so that only what detection needs reaches user space:
/// probes to the host's own addresses on watched ports (minus ports with a wildcard
/// listener, so traffic to real services stays in the kernel), and, for closed-port
/// detection, the host's own resets and ICMP port-unreachables. IPv6 packets with
/// extension headers are passed up too, because the kernel filter cannot walk them.
struct CaptureFilter {
    /// Past this many port ranges the expression is simplified to "all ports" (the detector
    /// re-checks every port), keeping the BPF program far below the kernel's 4,096 instructions.
    static let maxPortRanges = 64
    /// Past this many host addresses the address test is dropped for the same reason.
    static let maxAddresses = 64

    var addresses: [IPAddress]
    var tcpPorts: PortSet
    var udpPorts: PortSet
    var negativeReplies: Bool

    /// The filter, most precise first; the caller installs the first the kernel accepts.
    func expressions() -> [String] {
        [build(ports: true, hosts: true), build(ports: false, hosts: true), build(ports: false, hosts: false)]
    }

    func build(ports usePorts: Bool, hosts useHosts: Bool) -> String {
        let hosts = useHosts && addresses.count <= Self.maxAddresses ? addresses : []
        func hostTest(_ direction: String) -> String? {
            hosts.isEmpty ? nil : "(" + hosts.map { "\(direction) host \($0)" }.joined(separator: " or ") + ")"
        }
        func portTest(_ proto: String, _ set: PortSet) -> String? {
            if set.isEmpty { return nil }
            let ranges = set.ranges
            if !usePorts || ranges.count > Self.maxPortRanges { return proto }
            let terms = ranges.map { r in
                r.count == 1 ? "dst port \(r.lowerBound)" : "dst portrange \(r.lowerBound)-\(r.upperBound)"
            }
            return "(\(proto) and (" + terms.joined(separator: " or ") + "))"
        }
        var clauses: [String] = []
        let transports = [portTest("tcp", tcpPorts), portTest("udp", udpPorts)].compactMap { $0 }
        if !transports.isEmpty {
            let t = "(" + transports.joined(separator: " or ") + ")"
            clauses.append([hostTest("dst"), t].compactMap { $0 }.joined(separator: " and "))
            // IPv6 with extension headers (hop-by-hop, routing, fragment, dest. options, AH):
            // the transport header is not at a fixed offset, so let user space walk them.
            clauses.append([hostTest("dst"), "(ip6 and (ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 44 or ip6[6] == 60 or ip6[6] == 51))"]
                .compactMap { $0 }.joined(separator: " and "))
        }
        if negativeReplies {
            let replies = "((tcp[tcpflags] & tcp-rst != 0) or (ip6 and ip6[6] == 6 and ip6[53] & 4 != 0)"
                + " or (icmp[icmptype] == icmp-unreach and icmp[icmpcode] == 3)"
                + " or (ip6 and ip6[6] == 58 and ip6[40] == 1 and ip6[41] == 4))"
            clauses.append([hostTest("src"), replies].compactMap { $0 }.joined(separator: " and "))
        }
        if clauses.isEmpty { return "less 1" }  // matches nothing: nothing is watched
        return clauses.map { "(\($0))" }.joined(separator: " or ")
    }
}
