import CLinux
import PortsentryShared
#if canImport(Glibc)
import Glibc
#endif

/// One network interface as the kernel reports it.
struct InterfaceInfo: Equatable, Sendable {
    var name: String
    var isLoopback: Bool
    var isUp: Bool
    var addresses: [IPAddress]
    /// The on-link networks of those addresses (address and netmask length).
    var networks: [IPPrefix] = []
}

/// Which interfaces to capture on: Portsentry's `-i` semantics plus an exclude list.
struct InterfaceSelection: Equatable, Sendable {
    enum Base: Equatable, Sendable {
        /// Every interface with an address, loopback too.
        case all
        /// Every interface with an address except loopback (the default).
        case allButLoopback
        /// Exactly these (each is started when it appears and has an address).
        case named([String])
    }

    var base: Base = .allButLoopback
    var excluded: Set<String> = []

    func selects(_ i: InterfaceInfo) -> Bool {
        guard i.isUp, !i.addresses.isEmpty, !excluded.contains(i.name) else { return false }
        switch base {
        case .all: return true
        case .allButLoopback: return !i.isLoopback
        case .named(let names): return names.contains(i.name)
        }
    }
}

/// Lists interfaces and their addresses, and tells the capture loop when they change:
/// a netlink socket subscribed to link and address events wakes the loop (it is only a
/// wake-up signal; the state is always re-read with getifaddrs, so no message is parsed).
final class InterfaceMonitor {
    /// The netlink socket, or -1 when it could not be opened (the loop then rescans on a timer).
    let fd: Int32

    init() {
        let s = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                       NETLINK_ROUTE)
        if s >= 0 {
            var address = sockaddr_nl()
            address.nl_family = sa_family_t(AF_NETLINK)
            address.nl_groups = UInt32(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(s, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
            if bound != 0 {
                close(s)
                fd = -1
                return
            }
        }
        fd = s
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Empties the socket after a wake-up.
    func drain() {
        guard fd >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while buffer.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) > 0 {}
    }

    static func current() -> [InterfaceInfo] {
        var head: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var byName: [String: InterfaceInfo] = [:]
        var order: [String] = []
        var cursor = head
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            let name = String(cString: entry.pointee.ifa_name)
            let flags = entry.pointee.ifa_flags
            if byName[name] == nil {
                order.append(name)
                byName[name] = InterfaceInfo(name: name, isLoopback: flags & UInt32(IFF_LOOPBACK) != 0,
                                             isUp: flags & UInt32(IFF_UP) != 0, addresses: [])
            }
            guard let sa = entry.pointee.ifa_addr else { continue }
            switch Int32(sa.pointee.sa_family) {
            case AF_INET:
                let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                let address = IPAddress(ipv4: UInt32(bigEndian: a))
                byName[name]?.addresses.append(address)
                if let mask = entry.pointee.ifa_netmask {
                    let m = mask.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                    byName[name]?.networks.append(IPPrefix(address, length: UInt32(bigEndian: m).nonzeroBitCount))
                }
            case AF_INET6:
                var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                let address = withUnsafeBytes(of: &a) { IPAddress(ipv6Bytes: $0.baseAddress!) }
                byName[name]?.addresses.append(address)
                if let mask = entry.pointee.ifa_netmask {
                    var m = mask.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    let bits = withUnsafeBytes(of: &m) { $0.reduce(0) { $0 + $1.nonzeroBitCount } }
                    byName[name]?.networks.append(IPPrefix(address, length: bits))
                }
            default:
                break
            }
        }
        return order.compactMap { byName[$0] }
    }
}
