import PortsentryShared
import SensorCore

/// The host's listening sockets, in the sensor's own network namespace: Portsentry's service
/// check, done every few seconds instead of a bind() per packet. Read with sock_diag (only
/// listeners and UDP sockets cross the netlink socket); /proc/net is the fallback.
enum LocalSockets {
    /// /proc/net/tcp can be large on a busy server; reading more than this is refused and
    /// the previous snapshot kept.
    static let maxProcBytes = 64 << 20

    struct Snapshot: Equatable {
        var tcpListeners = ListenerSet()
        var udpListeners = ListenerSet()
        var boundTCPPorts = PortSet()
    }

    static func read(root: String = "/proc/net") -> Snapshot? {
        if let listeners = SocketDiag.tcpListeners(), let udp = SocketDiag.udpSockets() {
            var snap = Snapshot()
            for e in listeners {
                add(e.local, e.localPort, to: &snap.tcpListeners)
                // A port with a listener may also carry its accepted connections.
                snap.boundTCPPorts.insert(e.localPort)
            }
            for e in udp { add(e.local, e.localPort, to: &snap.udpListeners) }
            return snap
        }
        return readProc(root: root)
    }

    /// The /proc/net text tables, for kernels without sock_diag.
    static func readProc(root: String) -> Snapshot? {
        var snap = Snapshot()
        for (file, isTCP) in [("tcp", true), ("tcp6", true), ("udp", false), ("udp6", false)] {
            guard let text = try? TextFile.read("\(root)/\(file)", limit: maxProcBytes) else {
                if file.hasSuffix("6") { continue }  // IPv6 may be disabled
                return nil
            }
            parse(text, isTCP: isTCP, into: &snap)
        }
        return snap
    }

    /// Parses one /proc/net table. `local_address` is `HEX:PORT`, the address printed as
    /// 32-bit words in host byte order.
    static func parse(_ text: String, isTCP: Bool, into snap: inout Snapshot) {
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3 else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, let port = UInt16(local[1], radix: 16),
                  let address = decode(local[0]) else { continue }
            if isTCP {
                snap.boundTCPPorts.insert(port)
                guard fields[3] == "0A" else { continue }  // TCP_LISTEN
                add(address, port, to: &snap.tcpListeners)
            } else {
                add(address, port, to: &snap.udpListeners)
            }
        }
    }

    private static func add(_ address: IPAddress, _ port: UInt16, to set: inout ListenerSet) {
        // 0.0.0.0 and :: listen on every address (:: also on IPv4 unless IPV6_V6ONLY, which
        // /proc does not show; assuming it does errs on the side of no false positives).
        if address.isUnspecified || address == IPAddress(ipv4: 0) {
            set.anyAddress.insert(port)
        } else {
            set.specific.insert(AddressPort(address: address, port: port))
        }
    }

    static func decode(_ hex: Substring) -> IPAddress? {
        func word(_ s: Substring) -> UInt32? { UInt32(s, radix: 16).map { UInt32(bigEndian: $0) } }
        if hex.count == 8 { return word(hex).map { IPAddress(ipv4: $0) } }
        guard hex.count == 32 else { return nil }
        var words: [UInt32] = []
        var i = hex.startIndex
        for _ in 0..<4 {
            let j = hex.index(i, offsetBy: 8)
            guard let w = word(hex[i..<j]) else { return nil }
            words.append(w)
            i = j
        }
        return IPAddress(high: UInt64(words[0]) << 32 | UInt64(words[1]), low: UInt64(words[2]) << 32 | UInt64(words[3]))
    }

    /// `net.ipv4.ip_local_port_range` (it applies to IPv6 too).
    static func ephemeralRange(path: String = "/proc/sys/net/ipv4/ip_local_port_range") -> ClosedRange<UInt16>? {
        guard let text = try? TextFile.read(path, limit: 4096) else { return nil }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
        guard parts.count == 2, let lo = UInt16(parts[0]), let hi = UInt16(parts[1]), lo <= hi else { return nil }
        return lo...hi
    }
}
