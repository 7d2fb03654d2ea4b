package import PortsentryShared

/// What correlation concluded: block `scope` fleet-wide, why, and the events behind it.
package struct Finding: Equatable, Sendable {
    package var scope: IPPrefix
    package var origin: DecisionRecord.Origin
    package var reason: String
    package var events: [String]
    /// A completed handshake is among the evidence: the source address is proven, not forged.
    /// Without one the decision rests on probes anyone could have forged.
    package var proven: Bool
}

/// Sees every sensor's events together, per source, in a sliding window, and finds what
/// no single host can: horizontal sweeps (one port on each of many hosts), vertical scans
/// spread over hosts, distributed scans (many sources in one prefix working together), and
/// sources several sensors already blocked on their own.
///
/// Evidence is weighted by how hard it is to forge: a completed handshake counts two hosts
/// (or ports), a tripwire probe one, a closed-port negative reply half, UDP a quarter. Every
/// finding needs `quorum` distinct sensors to have seen the source: a single sensor, whether
/// fooled by forged packets or compromised and lying about handshakes, never decides alone.
/// A finding says whether a handshake proved the address (`proven`); the decision engine
/// treats unproven ones as possibly forged.
///
/// Memory is bounded: at most `maxSources` sources, `maxTouches` distinct touches per source
/// and `maxPrefixSources` sources per prefix; the least recently seen go first.
package final class FleetCorrelator {
    /// Sources tracked at once: a spoofed flood cannot grow the controller without bound.
    package static let maxSources = 200_000
    /// Distinct (sensor, host, port) touches kept per source: far past any threshold.
    package static let maxTouches = 256
    /// Sources remembered per prefix for distributed-scan detection.
    package static let maxPrefixSources = 4096
    /// Weights in quarters of a host or port.
    package static let unit = 4

    package struct Touch {
        package var time: Int64
        package var sensor: Int32
        package var host: IPAddress
        package var port: UInt16
        package var udp: Bool
        package var weight: Int
        /// A completed handshake: the source address is proven.
        package var handshake: Bool
        package var blocked: Bool
        package var event: String
    }

    package struct Activity {
        package var touches: [Touch] = []
        package var lastSeen: Int64 = 0
        /// No new finding for this source before this time (decided, or refused).
        package var quietUntil: Int64 = 0
    }

    package private(set) var policy: CorrelationPolicy
    private var sources: [IPAddress: Activity] = [:]
    private var prefixes: [IPPrefix: [IPAddress: Int64]] = [:]
    private var prefixQuietUntil: [IPPrefix: Int64] = [:]
    private var sensorIDs: [String: Int32] = [:]

    package init(policy: CorrelationPolicy) { self.policy = policy }

    package var trackedSources: Int { sources.count }

    package static func weight(evidence: String) -> Int {
        switch evidence {
        case "handshake": return 2 * unit
        case "tripwire": return unit
        case "negative-reply": return unit / 2
        default: return unit / 4  // udp and anything a newer sensor may send
        }
    }

    /// Adds a batch of stored events (`now` in epoch seconds) and returns what they decide.
    package func observe(_ events: [EventRecord], now: Int64) -> [Finding] {
        var touched: Set<IPAddress> = []
        for e in events {
            guard let source = IPAddress(e.source), let host = IPAddress(e.destination) else { continue }
            let sensor = intern(e.sensor)
            let touch = Touch(time: now, sensor: sensor, host: host, port: UInt16(clamping: e.port), udp: e.proto == "UDP",
                              weight: Self.weight(evidence: e.evidence), handshake: e.evidence == "handshake",
                              blocked: e.blocked == true, event: e.id)
            add(touch, from: source, now: now)
            touched.insert(source)
        }
        var findings: [Finding] = []
        var prefixesToCheck: Set<IPPrefix> = []
        for source in touched {
            if let f = evaluate(source, now: now) { findings.append(f) }
            if policy.distributedSources > 0 { prefixesToCheck.insert(prefix(of: source)) }
        }
        for p in prefixesToCheck {
            if let f = evaluateDistributed(p, now: now) { findings.append(f) }
        }
        return findings
    }

    /// After a finding was acted on (or refused): stay quiet about that scope for a window.
    package func quiet(_ scope: IPPrefix, until: Int64) {
        if scope.isHost {
            sources[scope.network]?.quietUntil = until
        } else {
            prefixQuietUntil[scope] = until
        }
    }

    private func intern(_ sensor: String) -> Int32 {
        if let id = sensorIDs[sensor] { return id }
        let id = Int32(sensorIDs.count)
        sensorIDs[sensor] = id
        return id
    }

    private func prefix(of source: IPAddress) -> IPPrefix {
        IPPrefix(source, length: source.isIPv4 ? policy.distributedPrefixV4 : policy.distributedPrefixV6)
    }

    private func add(_ touch: Touch, from source: IPAddress, now: Int64) {
        if sources[source] == nil, sources.count >= Self.maxSources { evict(now: now) }
        // Mutated in place (through the dictionary's modify accessor): taking the value out
        // and putting it back would copy its touch array on every event.
        Self.record(touch, in: &sources[source, default: Activity()], now: now)
        if policy.distributedSources > 0 {
            let p = prefix(of: source)
            if prefixes[p]?[source] == nil, let count = prefixes[p]?.count, count >= Self.maxPrefixSources,
               let oldest = prefixes[p]?.min(by: { $0.value < $1.value })?.key {
                prefixes[p]?[oldest] = nil
            }
            prefixes[p, default: [:]][source] = now
        }
    }

    private static func record(_ touch: Touch, in a: inout Activity, now: Int64) {
        a.lastSeen = now
        if let i = a.touches.firstIndex(where: { $0.sensor == touch.sensor && $0.host == touch.host && $0.port == touch.port && $0.udp == touch.udp }) {
            let old = a.touches[i]
            a.touches[i] = touch
            a.touches[i].weight = max(old.weight, touch.weight)
            a.touches[i].blocked = old.blocked || touch.blocked
            a.touches[i].handshake = old.handshake || touch.handshake
        } else {
            if a.touches.count >= maxTouches { a.touches.removeFirst() }
            a.touches.append(touch)
        }
    }

    /// Drops sources idle for a window, or the least recently seen tenth if none are.
    private func evict(now: Int64) {
        let cutoff = now - policy.window
        sources = sources.filter { $0.value.lastSeen >= cutoff }
        if sources.count >= Self.maxSources {
            let keep = sources.sorted { $0.value.lastSeen > $1.value.lastSeen }.prefix(Self.maxSources * 9 / 10)
            sources = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
        prefixes = prefixes.compactMapValues { members in
            let live = members.filter { $0.value >= cutoff }
            return live.isEmpty ? nil : live
        }
    }

    package struct Tally {
        package var hosts = 0
        package var ports = 0
        package var sensors: Set<Int32> = []
        package var blockers: Set<Int32> = []
        package var handshake = false
        package var hostCount = 0
        package var portCount = 0
        package var events: [String] = []
    }

    private func tally(_ touches: [Touch]) -> Tally {
        // Most sources of a spoofed flood have one touch: no dictionaries for them.
        if touches.count == 1, let only = touches.first {
            var t = Tally()
            t.hosts = only.weight
            t.ports = only.weight
            t.hostCount = 1
            t.portCount = 1
            t.sensors = [only.sensor]
            if only.blocked { t.blockers = [only.sensor] }
            t.handshake = only.handshake
            t.events = [only.event]
            return t
        }
        return tally(sequence: touches)
    }

    private func tally(sequence touches: some Sequence<Touch>) -> Tally {
        var t = Tally()
        var hostWeight: [IPAddress: Int] = [:]
        var portWeight: [UInt32: Int] = [:]
        for touch in touches {
            hostWeight[touch.host] = max(hostWeight[touch.host] ?? 0, touch.weight)
            let key = UInt32(touch.port) | (touch.udp ? 0x1_0000 : 0)
            portWeight[key] = max(portWeight[key] ?? 0, touch.weight)
            t.sensors.insert(touch.sensor)
            if touch.blocked { t.blockers.insert(touch.sensor) }
            if touch.handshake { t.handshake = true }
            if t.events.count < DecisionRecord.maxEvidence { t.events.append(touch.event) }
        }
        t.hosts = hostWeight.values.reduce(0, +)
        t.ports = portWeight.values.reduce(0, +)
        t.hostCount = hostWeight.count
        t.portCount = portWeight.count
        return t
    }

    private func evaluate(_ source: IPAddress, now: Int64) -> Finding? {
        let cutoff = now - policy.window
        if let first = sources[source]?.touches.first, first.time < cutoff {
            sources[source]?.touches.removeAll { $0.time < cutoff }
        }
        guard let a = sources[source], a.quietUntil <= now, !a.touches.isEmpty else { return nil }
        let t = tally(a.touches)
        let corroborated = t.sensors.count >= policy.quorum
        let window = "in \(policy.window) s"
        if t.hosts >= policy.horizontalHosts * Self.unit, corroborated {
            return Finding(scope: IPPrefix(host: source), origin: .correlation,
                           reason: "horizontal sweep: \(t.hostCount) hosts, \(t.portCount) ports, seen by \(t.sensors.count) sensors \(window)",
                           events: t.events, proven: t.handshake)
        }
        if t.ports >= policy.verticalPorts * Self.unit, corroborated {
            return Finding(scope: IPPrefix(host: source), origin: .correlation,
                           reason: "vertical scan across hosts: \(t.portCount) ports on \(t.hostCount) hosts, seen by \(t.sensors.count) sensors \(window)",
                           events: t.events, proven: t.handshake)
        }
        if policy.promoteLocalBlocks > 0, t.blockers.count >= policy.promoteLocalBlocks, corroborated {
            return Finding(scope: IPPrefix(host: source), origin: .sensor,
                           reason: "blocked locally by \(t.blockers.count) sensors \(window)", events: t.events, proven: t.handshake)
        }
        return nil
    }

    private func evaluateDistributed(_ p: IPPrefix, now: Int64) -> Finding? {
        guard (prefixQuietUntil[p] ?? 0) <= now, let members = prefixes[p] else { return nil }
        let cutoff = now - policy.window
        let live = members.filter { $0.value >= cutoff }.map(\.key)
        guard live.count >= policy.distributedSources else { return nil }
        let touches = live.lazy.compactMap { self.sources[$0]?.touches }.joined().filter { $0.time >= cutoff }
        let t = tally(sequence: touches)
        guard t.hosts >= policy.horizontalHosts * Self.unit || t.ports >= policy.verticalPorts * Self.unit,
              t.sensors.count >= policy.quorum else { return nil }
        return Finding(scope: p, origin: .correlation,
                       reason: "distributed scan: \(live.count) sources in \(p) touched \(t.hostCount) hosts, \(t.portCount) ports, seen by \(t.sensors.count) sensors in \(policy.window) s",
                       events: t.events, proven: t.handshake)
    }
}
