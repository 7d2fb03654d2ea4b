import CLinux
import Logging
import PortsentryShared
#if canImport(Glibc)
import Glibc
import SensorCore
#endif

/// Connect mode (Portsentry 1.2 `-tcp`/`-udp`, 2.x `--connect`): real sockets on the
/// tripwire ports. Only a completed handshake (or a datagram) is reported, which a spoofed
/// source cannot produce for TCP. Sockets are dual-stack, so IPv4 arrives IPv4-mapped and
/// is reported as plain IPv4.
final class ConnectModeSockets {
    /// Listen backlog: a scanner's connections are accepted and closed at once.
    static let backlog: Int32 = 64
    /// The banner is truncated to this: it is a lure, not a service.
    static let maxBannerBytes = 1024

    private var tcpSockets: [Int32: UInt16] = [:]
    private var udpSockets: [Int32: UInt16] = [:]
    private let banner: [UInt8]?

    init(tcp: PortSet, udp: PortSet, banner: String?, logger: Logger) {
        self.banner = banner.map { Array($0.utf8.prefix(Self.maxBannerBytes)) }
        raiseFileLimit(to: UInt64(tcp.count + udp.count + 64))
        for port in tcp.ranges.flatMap({ $0 }) {
            if let fd = Self.bind(port, udp: false) { tcpSockets[fd] = port; logger.notice("Listen on AF_INET6: TCP port: \(port)") }
            else { logger.warning("Could not bind TCP socket on port \(port): \(errnoText()). Attempting to continue") }
        }
        for port in udp.ranges.flatMap({ $0 }) {
            if let fd = Self.bind(port, udp: true) { udpSockets[fd] = port; logger.notice("Listen on AF_INET6: UDP port: \(port)") }
            else { logger.warning("Could not bind UDP socket on port \(port): \(errnoText()). Attempting to continue") }
        }
    }

    deinit {
        for fd in tcpSockets.keys { close(fd) }
        for fd in udpSockets.keys { close(fd) }
    }

    var isEmpty: Bool { tcpSockets.isEmpty && udpSockets.isEmpty }
    var fds: [Int32] { Array(tcpSockets.keys) + Array(udpSockets.keys) }
    func owns(_ fd: Int32) -> Bool { tcpSockets[fd] != nil || udpSockets[fd] != nil }

    /// Accepts what is waiting on `fd`; `report` returns whether to send the banner.
    func accept(fd: Int32, report: (IPAddress, IPAddress, TransportProtocol, UInt16) -> Bool) {
        if let port = tcpSockets[fd] {
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &length) }
            }
            guard client >= 0 else { return }
            defer { close(client) }
            var local = sockaddr_storage()
            var localLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &localLength) }
            }
            if report(Self.address(peer), Self.address(local), .tcp, port), let banner {
                _ = banner.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            }
        } else if let port = udpSockets[fd] {
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            var byte: UInt8 = 0
            let n = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_TRUNC), $0, &length) }
            }
            guard n >= 0 else { return }
            if report(Self.address(peer), .unspecified, .udp, port), let banner {
                _ = banner.withUnsafeBytes { bytes in
                    withUnsafePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, length)
                        }
                    }
                }
            }
        }
    }

    private static func bind(_ port: UInt16, udp: Bool) -> Int32? {
        let type = (udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        var fd = socket(AF_INET6, type, 0)
        var ok = false
        if fd >= 0 {
            var off: Int32 = 0, on: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(4))
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(4))
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            ok = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            } == 0
        }
        if !ok {
            // No IPv6 on this host: fall back to IPv4 only.
            if fd >= 0 { close(fd) }
            fd = socket(AF_INET, type, 0)
            guard fd >= 0 else { return nil }
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(4))
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            let bound = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound != 0 { close(fd); return nil }
        }
        if !udp, listen(fd, backlog) != 0 { close(fd); return nil }
        return fd
    }

    static func address(_ storage: sockaddr_storage) -> IPAddress {
        var s = storage
        switch Int32(s.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { IPAddress(ipv4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                    var a = p.pointee.sin6_addr
                    return withUnsafeBytes(of: &a) { IPAddress(ipv6Bytes: $0.baseAddress!) }
                }
            }
        default:
            return .unspecified
        }
    }

    private func raiseFileLimit(to wanted: UInt64) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, UInt64(limit.rlim_cur) < wanted else { return }
        limit.rlim_cur = min(rlim_t(wanted), limit.rlim_max)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
