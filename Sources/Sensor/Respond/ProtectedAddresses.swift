import PortsentryShared
import SensorCore

/// Addresses that are never blocked, whatever the evidence: blocking them would cut the
/// host off (its gateways, its DNS resolvers) or lock out the admin (peers of established
/// sessions on protected ports, e.g. SSH; asked of the kernel at decision time). A probe
/// "from" one of them is logged as such and not acted on: it is far more likely spoofed.
struct ProtectedAddresses: Sendable {
    enum Reason: String, Sendable {
        case gateway = "default gateway"
        case resolver = "DNS resolver"
        case session = "peer of an established session"
        case configured = "protected by configuration"
    }

    private(set) var entries: [IPAddress: Reason] = [:]

    func reason(for address: IPAddress) -> Reason? { entries[address] }

    var all: [(IPAddress, Reason)] { entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    /// A peer in `prefix` with an established connection to one of `ports` here, if any.
    /// The kernel filters by peer address, so this costs the same on a server with 100,000
    /// connections as on an idle one (no /proc text to format and parse).
    static func sessionPeer(in prefix: IPPrefix, ports: PortSet) -> IPAddress? {
        guard !ports.isEmpty else { return nil }
        if let entries = SocketDiag.established(with: prefix) {
            return entries.first { ports.contains($0.localPort) }?.remote
        }
        // No sock_diag: the /proc tables.
        return sessionPeers(ports: ports, procNet: "/proc/net").first { prefix.contains($0) }
    }

    /// Re-reads the host's routes and resolvers (and, when `sessionPorts` is given, the
    /// /proc session table: tests and kernels without sock_diag).
    static func read(gateways: Bool, resolvers: Bool, sessionPorts: PortSet = PortSet(), procNet: String = "/proc/net",
                     resolvConf: String = "/etc/resolv.conf") -> ProtectedAddresses {
        var p = ProtectedAddresses()
        if gateways {
            for a in defaultGateways(procNet: procNet) { p.entries[a] = .gateway }
        }
        if resolvers {
            for a in nameservers(resolvConf) where p.entries[a] == nil { p.entries[a] = .resolver }
        }
        if !sessionPorts.isEmpty {
            for a in sessionPeers(ports: sessionPorts, procNet: procNet) where p.entries[a] == nil { p.entries[a] = .session }
        }
        return p
    }

    /// Next hops of the IPv4 and IPv6 default routes.
    static func defaultGateways(procNet: String) -> [IPAddress] {
        var out: [IPAddress] = []
        if let text = try? TextFile.read("\(procNet)/route", limit: 4 << 20) {
            // Iface Destination Gateway Flags ... (hex, host byte order)
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard f.count > 2, f[1] == "00000000", let gw = UInt32(f[2], radix: 16), gw != 0 else { continue }
                out.append(IPAddress(ipv4: UInt32(bigEndian: gw)))
            }
        }
        if let text = try? TextFile.read("\(procNet)/ipv6_route", limit: 16 << 20) {
            // dest destlen src srclen nexthop metric refcnt use flags iface (hex, network order)
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                guard f.count > 4, f[0] == String(repeating: "0", count: 32), f[1] == "00",
                      let hop = hex128(f[4]), !hop.isUnspecified else { continue }
                out.append(hop)
            }
        }
        return out
    }

    static func nameservers(_ path: String) -> [IPAddress] {
        guard let text = try? TextFile.read(path, limit: 1 << 20) else { return [] }
        return text.split(whereSeparator: \.isNewline).compactMap { line in
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 2, f[0] == "nameserver" else { return nil }
            return IPAddress(f[1])
        }
    }

    /// Remote ends of established TCP connections whose local port is in `ports`.
    static func sessionPeers(ports: PortSet, procNet: String) -> [IPAddress] {
        var out: [IPAddress] = []
        for file in ["tcp", "tcp6"] {
            guard let text = try? TextFile.read("\(procNet)/\(file)", limit: LocalSockets.maxProcBytes) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                guard f.count > 3, f[3] == "01" else { continue }  // TCP_ESTABLISHED
                let local = f[1].split(separator: ":"), remote = f[2].split(separator: ":")
                guard local.count == 2, remote.count == 2, let port = UInt16(local[1], radix: 16), ports.contains(port),
                      let peer = LocalSockets.decode(remote[0]) else { continue }
                out.append(peer)
            }
        }
        return out
    }

    private static func hex128(_ s: Substring) -> IPAddress? {
        guard s.count == 32, let hi = UInt64(s.prefix(16), radix: 16), let lo = UInt64(s.suffix(16), radix: 16) else { return nil }
        return IPAddress(high: hi, low: lo)
    }
}
