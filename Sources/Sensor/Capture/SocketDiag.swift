import CLinux
import PortsentryShared
#if canImport(Glibc)
import Glibc
#endif

/// Asks the kernel about local sockets over netlink (`sock_diag`), in the sensor's own
/// network namespace. Unlike /proc/net/tcp, which formats every socket as text on each read
/// (milliseconds on an idle host, far more on a busy server), a dump can be limited by state
/// (only listeners) or filtered in the kernel by peer address, and arrives in binary.
enum SocketDiag {
    /// Reply buffer per recv: netlink dumps arrive in chunks of at most a few pages.
    static let receiveBuffer = 64 << 10
    /// A dump is abandoned past this many sockets (a kernel that never ends the dump).
    static let maxSockets = 4_000_000

    struct Entry: Equatable {
        var local: IPAddress
        var localPort: UInt16
        var remote: IPAddress
        var remotePort: UInt16
    }

    /// TCP sockets in LISTEN state, both families.
    static func tcpListeners() -> [Entry]? {
        dump(proto: UInt8(IPPROTO_TCP), states: 1 << 10 /* TCP_LISTEN */, peer: nil)
    }

    /// Every UDP socket (a bound UDP socket is a "listener" for the service check).
    static func udpSockets() -> [Entry]? {
        dump(proto: UInt8(IPPROTO_UDP), states: 0xFFFF_FFFF, peer: nil)
    }

    /// Every established TCP connection (both families).
    static func established() -> [Entry]? {
        dump(proto: UInt8(IPPROTO_TCP), states: 1 << 1 /* TCP_ESTABLISHED */, peer: nil)
    }

    /// Established TCP connections with peers in `peers`, filtered by the kernel.
    static func established(with peers: IPPrefix) -> [Entry]? {
        dump(proto: UInt8(IPPROTO_TCP), states: 1 << 1 /* TCP_ESTABLISHED */, peer: peers)
    }

    private static func dump(proto: UInt8, states: UInt32, peer: IPPrefix?) -> [Entry]? {
        var all: [Entry] = []
        // An IPv4 peer may sit on an IPv6 socket (a dual-stack listener on ::) as
        // ::ffff:a.b.c.d, so an IPv4 prefix is asked of both families.
        var queries: [(UInt8, PeerMatch?)] = [(UInt8(AF_INET), nil), (UInt8(AF_INET6), nil)]
        if let peer {
            let v6 = PeerMatch(bytes: peer.network.bytes, bits: peer.length128)
            queries = peer.network.isIPv4
                ? [(UInt8(AF_INET), PeerMatch(bytes: Array(peer.network.bytes.suffix(4)), bits: peer.length)), (UInt8(AF_INET6), v6)]
                : [(UInt8(AF_INET6), v6)]
        }
        for (family, match) in queries {
            guard let entries = dump(family: family, proto: proto, states: states, peer: match) else { return nil }
            all += entries
        }
        return all
    }

    /// A peer address filter as the kernel wants it: the family's own address bytes.
    private struct PeerMatch {
        var bytes: [UInt8]
        var bits: Int
    }

    private static func dump(family: UInt8, proto: UInt8, states: UInt32, peer: PeerMatch?) -> [Entry]? {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_SOCK_DIAG)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = dumpRequest(family: family, proto: proto, states: states, peer: peer)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        return receiveEntries(fd)
    }

    /// nlmsghdr (16) + inet_diag_req_v2 (56) [+ rtattr (4) + bytecode].
    private static func dumpRequest(family: UInt8, proto: UInt8, states: UInt32, peer: PeerMatch?) -> [UInt8] {
        var request = [UInt8]()
        func u16(_ v: UInt16) { request += withUnsafeBytes(of: v) { Array($0) } }  // netlink: host byte order
        func u32(_ v: UInt32) { request += withUnsafeBytes(of: v) { Array($0) } }
        var bytecode = [UInt8]()
        if let peer {
            // One INET_DIAG_BC_D_COND op: "remote address in the prefix", any port. Reaching the
            // end of the program accepts; jumping 4 past it rejects.
            let address = peer.bytes
            let opLength = 4 + 8 + address.count
            bytecode = [UInt8(INET_DIAG_BC_D_COND), UInt8(opLength)]
            bytecode += withUnsafeBytes(of: UInt16(opLength + 4)) { Array($0) }
            bytecode += [family, UInt8(peer.bits), 0, 0]
            bytecode += withUnsafeBytes(of: Int32(-1)) { Array($0) }
            bytecode += address
        }
        let attributeLength = bytecode.isEmpty ? 0 : 4 + bytecode.count
        u32(UInt32(16 + 56 + attributeLength))
        u16(UInt16(SOCK_DIAG_BY_FAMILY))
        u16(UInt16(NLM_F_REQUEST | NLM_F_DUMP))
        u32(1)
        u32(0)
        request += [family, proto, 0, 0]
        u32(states)
        request += [UInt8](repeating: 0, count: 48)  // inet_diag_sockid: any
        if !bytecode.isEmpty {
            u16(UInt16(attributeLength))
            u16(UInt16(INET_DIAG_REQ_BYTECODE))
            request += bytecode
        }
        return request
    }

    /// The dump's answers up to NLMSG_DONE (nil on an error or a malformed message), at most
    /// `maxSockets` entries.
    private static func receiveEntries(_ fd: Int32) -> [Entry]? {
        var entries: [Entry] = []
        var buffer = [UInt8](repeating: 0, count: receiveBuffer)
        while entries.count < maxSockets {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return nil }
            var offset = 0
            while offset + 16 <= n {
                let length = Int(read32(buffer, offset))
                let type = read16(buffer, offset + 4)
                guard length >= 16, offset + length <= n else { return nil }
                if type == UInt16(NLMSG_DONE) { return entries }
                if type == UInt16(NLMSG_ERROR) { return nil }
                // inet_diag_msg: family, state, timer, retrans, then the sockid.
                let m = offset + 16
                if length >= 16 + 72 {
                    let isV4 = buffer[m] == UInt8(AF_INET)
                    let sport = UInt16(buffer[m + 4]) << 8 | UInt16(buffer[m + 5])
                    let dport = UInt16(buffer[m + 6]) << 8 | UInt16(buffer[m + 7])
                    let src = buffer.withUnsafeBytes { address($0.baseAddress! + m + 8, isV4) }
                    let dst = buffer.withUnsafeBytes { address($0.baseAddress! + m + 24, isV4) }
                    entries.append(Entry(local: src, localPort: sport, remote: dst, remotePort: dport))
                }
                offset += (length + 3) & ~3
            }
        }
        return entries
    }

    private static func address(_ p: UnsafeRawPointer, _ isV4: Bool) -> IPAddress {
        isV4 ? IPAddress(ipv4Bytes: p) : IPAddress(ipv6Bytes: p)
    }

    private static func read32(_ b: [UInt8], _ o: Int) -> UInt32 {
        b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
    }

    private static func read16(_ b: [UInt8], _ o: Int) -> UInt16 {
        b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt16.self) }
    }
}
