import Foundation
import PortsentryShared
import Synchronization

/// Addresses that are never blocked fleet-wide: what the config protects, the controller's
/// own addresses (blocking them would cut every sensor off), and what each sensor reports in
/// its heartbeat as protected on its side (its gateways and resolvers).
final class ProtectedRegistry: Sendable {
    private let configured: [IPPrefix]
    private let own: [IPAddress]
    private let reported = Mutex<[String: [IPAddress]]>([:])
    /// Addresses one sensor may report: a heartbeat cannot make the registry grow without bound.
    static let maxPerSensor = 256

    init(configured: [IPPrefix], own: [IPAddress] = ProtectedRegistry.localAddresses()) {
        self.configured = configured
        self.own = own
    }

    /// Takes a sensor's protected list from its heartbeat status (JSON text).
    func update(sensor: String, status: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any],
              let list = object["protected"] as? [String] else { return }
        let addresses = list.prefix(Self.maxPerSensor).compactMap { IPAddress($0) }
        reported.withLock { $0[sensor] = addresses }
    }

    /// Why `scope` must not be blocked, if it must not.
    func protection(covering scope: IPPrefix) -> String? {
        if let p = configured.first(where: { $0.overlaps(scope) }) { return "\(p) is protected by the controller's config" }
        if let a = own.first(where: { scope.contains($0) }) { return "\(a) is the controller's own address" }
        return reported.withLock { map in
            for (sensor, addresses) in map.sorted(by: { $0.key < $1.key }) {
                if let a = addresses.first(where: { scope.contains($0) }) { return "\(a) is protected by sensor \(sensor)" }
            }
            return nil
        }
    }

    /// Every address on this machine's interfaces.
    static func localAddresses() -> [IPAddress] {
        var out: [IPAddress] = []
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let sa = entry.pointee.ifa_addr else { continue }
            switch Int32(sa.pointee.sa_family) {
            case AF_INET:
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    out.append(IPAddress(ipv4: UInt32(bigEndian: sin.pointee.sin_addr.s_addr)))
                }
            case AF_INET6:
                sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    withUnsafeBytes(of: sin6.pointee.sin6_addr) { out.append(IPAddress(ipv6Bytes: $0.baseAddress!)) }
                }
            default: break
            }
        }
        return out
    }
}

extension IPPrefix {
    /// True when the two share at least one address.
    func overlaps(_ other: IPPrefix) -> Bool { contains(other.network) || other.contains(network) }
}
