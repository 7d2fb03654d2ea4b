import Foundation
package import PortsentryShared
import Synchronization

/// Addresses that automatic fleet decisions never block, and addresses that have proven
/// themselves by completing real connections with fleet members.
///
/// Sources, and how far each is believed (a sensor may be compromised, so its claims are
/// bounded and checked for plausibility; none of them ever stops an operator's decision):
/// - the controller's config (`PROTECT`) and its own interface addresses: always;
/// - each sensor's own addresses: always (one sensor reports at most 256);
/// - each sensor's gateways, resolvers and the controller address it reaches: only when they
///   lie on one of that sensor's own networks (a gateway is on-link by definition); a
///   sensor claiming a foreign address this way is not believed, and that is counted;
/// - each sensor's ignore-file entries: when no wider than /16 (IPv4) or /48 (IPv6);
/// - peers of live sessions on a sensor's PROTECT_PORTS: while reported, and for
///   `sessionGrace` after, so an admin who reconnects is still covered.
/// Sensors' established-connection peers are remembered for `peerMemory` as "known peers":
/// a decision on stealth probes alone is not taken against them (`isKnownPeer`).
package final class ProtectedRegistry: Sendable {
    /// The widest ignore-file entry a sensor may protect fleet-wide with.
    package static let minIgnoredLengthV4 = 16
    package static let minIgnoredLengthV6 = 48
    /// The widest network a gateway or resolver claim is checked against.
    package static let minNetworkLengthV4 = 16
    package static let minNetworkLengthV6 = 48
    /// Known peers remembered at once, fleet-wide: a lying sensor cannot grow this without bound.
    package static let maxKnownPeers = 200_000

    package enum Kind: String, Sendable {
        case own = "own address"
        case gateway, resolver, controller = "controller address"
        case ignored = "ignore-file entry"
        case session = "peer of a live admin session"
    }

    /// One believed claim.
    package struct Claim: Equatable, Sendable {
        package var sensor: String
        package var kind: Kind
        package var prefix: IPPrefix
    }

    private struct SensorClaims {
        var name = ""
        var own: Set<IPAddress> = []
        var believed: [Claim] = []
        /// Session peers and when they were last reported (epoch seconds).
        var sessions: [IPAddress: Int64] = [:]
        var implausible = 0
        var fleetSkipped: Int64 = 0
    }

    private struct State {
        var sensors: [String: SensorClaims] = [:]
        var knownPeers: [IPAddress: Int64] = [:]
        var implausibleClaims = 0
    }

    private let configured: [IPPrefix]
    private let controllerOwn: [IPAddress]
    package let sessionGrace: Int64
    package let peerMemory: Int64
    private let state = Mutex(State())

    package init(configured: [IPPrefix], own: [IPAddress] = ProtectedRegistry.localAddresses(), sessionGrace: Int64 = 3600,
         peerMemory: Int64 = 86_400) {
        self.configured = configured
        controllerOwn = own
        self.sessionGrace = sessionGrace
        self.peerMemory = peerMemory
    }

    /// Takes a sensor's report from its heartbeat. Returns the prefixes that became protected
    /// with it (the caller lifts automatic decisions that cover them).
    @discardableResult
    package func update(sensor: String, report: ProtectionReport, now: Int64) -> [Claim] {
        state.withLock { s in
            let before = Set(Self.live(s.sensors[sensor], now: now, grace: sessionGrace).map(\.prefix))
            var c = SensorClaims(name: sensor)
            c.own = Set(report.addresses)
            c.fleetSkipped = report.fleetSkipped
            for a in report.addresses { c.believed.append(Claim(sensor: sensor, kind: .own, prefix: IPPrefix(host: a))) }
            let networks = report.networks.filter {
                $0.length >= ($0.network.isIPv4 ? Self.minNetworkLengthV4 : Self.minNetworkLengthV6)
            }
            for (kind, list) in [(Kind.gateway, report.gateways), (.resolver, report.resolvers), (.controller, report.controller)] {
                for a in list {
                    if networks.contains(where: { $0.contains(a) }) {
                        c.believed.append(Claim(sensor: sensor, kind: kind, prefix: IPPrefix(host: a)))
                    } else {
                        c.implausible += 1
                    }
                }
            }
            for p in report.ignored {
                if p.length >= (p.network.isIPv4 ? Self.minIgnoredLengthV4 : Self.minIgnoredLengthV6) {
                    c.believed.append(Claim(sensor: sensor, kind: .ignored, prefix: p))
                } else {
                    c.implausible += 1
                }
            }
            // Sessions: the ones reported now, plus earlier ones still within their grace.
            for (peer, seen) in s.sensors[sensor]?.sessions ?? [:] where seen + sessionGrace > now { c.sessions[peer] = seen }
            for peer in report.sessions { c.sessions[peer] = now }
            if c.sessions.count > ProtectionReport.maxSessions {
                c.sessions = Dictionary(uniqueKeysWithValues: c.sessions.sorted { $0.value > $1.value }
                    .prefix(ProtectionReport.maxSessions).map { ($0.key, $0.value) })
            }
            s.implausibleClaims += max(0, c.implausible - (s.sensors[sensor]?.implausible ?? 0))
            s.sensors[sensor] = c
            for peer in report.peers { s.knownPeers[peer] = now }
            if s.knownPeers.count > Self.maxKnownPeers {
                let cutoff = now - peerMemory
                s.knownPeers = s.knownPeers.filter { $0.value >= cutoff }
                if s.knownPeers.count > Self.maxKnownPeers {
                    s.knownPeers = Dictionary(uniqueKeysWithValues: s.knownPeers.sorted { $0.value > $1.value }
                        .prefix(Self.maxKnownPeers * 9 / 10).map { ($0.key, $0.value) })
                }
            }
            return Self.live(c, now: now, grace: sessionGrace).filter { !before.contains($0.prefix) }
        }
    }

    /// Takes a heartbeat body; nil when it carries no readable report (nothing changes then).
    @discardableResult
    package func update(sensor: String, status: String, now: Int64) -> [Claim]? {
        guard let report = ProtectionReport.fromHeartbeat(Array(status.utf8)) else { return nil }
        return update(sensor: sensor, report: report, now: now)
    }

    /// A revoked sensor's claims count no more.
    package func forget(sensor: String) {
        _ = state.withLock { $0.sensors.removeValue(forKey: sensor) }
    }

    private static func live(_ c: SensorClaims?, now: Int64, grace: Int64) -> [Claim] {
        guard let c else { return [] }
        return c.believed + c.sessions.filter { $0.value + grace > now }.keys.sorted().map {
            Claim(sensor: c.name, kind: .session, prefix: IPPrefix(host: $0))
        }
    }

    /// Why automatic decisions must not block `scope`, if they must not.
    package func protection(covering scope: IPPrefix, now: Int64) -> String? {
        if let p = configured.first(where: { $0.overlaps(scope) }) { return "\(p) is protected by the controller's config" }
        if let a = controllerOwn.first(where: { scope.contains($0) }) { return "\(a) is the controller's own address" }
        return claims(overlapping: scope, now: now).first.map(Self.describe)
    }

    /// Why even an operator may not block `scope`: only the controller's own config and addresses.
    package func operatorProtection(covering scope: IPPrefix) -> String? {
        if let p = configured.first(where: { $0.overlaps(scope) }) { return "\(p) is protected by the controller's config" }
        if let a = controllerOwn.first(where: { scope.contains($0) }) { return "\(a) is the controller's own address" }
        return nil
    }

    /// Every believed sensor claim that overlaps `scope` (what an operator is told about).
    package func claims(overlapping scope: IPPrefix, now: Int64) -> [Claim] {
        state.withLock { s in
            var out: [Claim] = []
            for (_, c) in s.sensors.sorted(by: { $0.key < $1.key }) {
                out += Self.live(c, now: now, grace: sessionGrace).filter { $0.prefix.overlaps(scope) }
            }
            return out
        }
    }

    /// Every believed claim, for the operator API.
    package func allClaims(now: Int64) -> [Claim] {
        state.withLock { s in
            s.sensors.sorted(by: { $0.key < $1.key }).flatMap { Self.live($0.value, now: now, grace: sessionGrace) }
        }
    }

    package static func describe(_ c: Claim) -> String {
        "\(c.prefix) is \(c.kind == .own ? "an" : "a") \(c.kind.rawValue) of sensor \(c.sensor)"
    }

    /// True when an address in `scope` completed real TCP connections with a fleet member
    /// within `peerMemory`.
    package func isKnownPeer(_ scope: IPPrefix, now: Int64) -> Bool {
        let cutoff = now - peerMemory
        return state.withLock { s in
            if scope.isHost { return (s.knownPeers[scope.network] ?? .min) >= cutoff }
            return s.knownPeers.contains { scope.contains($0.key) && $0.value >= cutoff }
        }
    }

    /// The addresses a sensor reported as its own; nil before its first report.
    package func ownAddresses(of sensor: String) -> Set<IPAddress>? {
        state.withLock { $0.sensors[sensor]?.own }
    }

    package struct Counts: Sendable {
        package var claims = 0
        package var sessions = 0
        package var knownPeers = 0
        package var implausible = 0
        package var fleetSkipped: Int64 = 0
    }

    package func counts(now: Int64) -> Counts {
        state.withLock { s in
            var n = Counts(knownPeers: s.knownPeers.count, implausible: s.implausibleClaims)
            for c in s.sensors.values {
                n.claims += c.believed.count
                n.sessions += c.sessions.filter { $0.value + sessionGrace > now }.count
                n.fleetSkipped += c.fleetSkipped
            }
            return n
        }
    }

    /// Every address on this machine's interfaces.
    package static func localAddresses() -> [IPAddress] {
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
    package func overlaps(_ other: IPPrefix) -> Bool { contains(other.network) || other.contains(network) }
}
