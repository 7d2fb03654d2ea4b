package import PortsentryShared

/// An event plus what the output limiter needs to know about its source.
package struct DetectedEvent: Sendable {
    package var event: ScanEvent
    /// 1 for the source's first event in the log window, 2 for the second, ...; 0 when the
    /// source is not tracked (ignored sources take no table space).
    package var sourceEventNumber: UInt32
    /// Distinct ports the source has probed: 1 is what a spoofed flood looks like.
    package var sourceDistinctPorts: UInt32
}

/// Turns parsed packets into scan events: tripwire probes (one event per probe), and
/// scans of closed ports seen through the host's own negative replies (one event per scan).
///
/// Single-threaded by design: it is owned by the capture loop and never locks. Per packet
/// it does a few bitmap tests and at most one bounded table lookup; it allocates nothing.
///
/// Its state is marked `@exclusivity(unchecked)`: the detector is confined to one thread and
/// no method hands out access to a property while another access is running, so the runtime
/// check (about 200 instructions a packet, measured with callgrind) buys nothing here.
package final class Detector {
    @exclusivity(unchecked) package var settings: DetectionSettings {
        didSet { table.lifetime = settings.entryLifetime }
    }
    @exclusivity(unchecked) package var host: HostView
    @exclusivity(unchecked) package var ignore: AddressSet
    @exclusivity(unchecked) package private(set) var counters = DetectorCounters()
    package let table: SourceTable

    package init(settings: DetectionSettings, host: HostView, ignore: AddressSet) {
        self.settings = settings
        self.host = host
        self.ignore = ignore
        table = SourceTable(capacity: settings.tableCapacity, lifetime: settings.entryLifetime)
    }

    package var tableCapacity: Int { table.capacity }
    package var tableOccupied: Int { table.occupied }
    package var tableMemoryBytes: Int { table.memoryBytes }
    package var tableEvictions: UInt64 { table.evictions }

    /// `now` orders state (monotonic in live mode, packet time in replay); `wallTime` is
    /// what the event reports.
    @inline(__always)
    package func process(_ p: ParsedPacket, now: Int64, wallTime: EpochNanos) -> DetectedEvent? {
        switch p.transport {
        case .tcp:
            if p.tcpFlags.contains(.rst), host.isProtected(p.source) {
                return negativeReply(.tcp, scanner: p.destination, target: p.source, port: p.sourcePort,
                                     now: now, wallTime: wallTime)
            }
            if host.learnListenersFromReplies, p.tcpFlags.classic == [.syn, .ack],
               settings.tripwireTCP.contains(p.sourcePort) {
                host.tcpListeners.specific.insert(AddressPort(address: p.source, port: p.sourcePort))
            }
            guard settings.tripwireTCP.contains(p.destinationPort) else { return skip(\.notWatched) }
            guard host.isProtected(p.destination) else { return skip(\.notOurs) }
            guard let kind = ProbeClassifier.classify(p.tcpFlags) else { return skip(\.backscatter) }
            if ProbeClassifier.needsNoConnection(p.tcpFlags), host.connectionPossible(p.destinationPort) {
                return skip(\.possibleConnection)
            }
            if host.hasListener(.tcp, p.destination, p.destinationPort) { return skip(\.serviceRunning) }
            return probe(kind, .tcp, p, now: now, wallTime: wallTime)
        case .tcpFragmentHead:
            guard settings.tripwireTCP.contains(p.destinationPort) else { return skip(\.notWatched) }
            guard host.isProtected(p.destination) else { return skip(\.notOurs) }
            if host.hasListener(.tcp, p.destination, p.destinationPort) { return skip(\.serviceRunning) }
            return probe(.tcpFragmented, .tcp, p, now: now, wallTime: wallTime)
        case .udp:
            guard settings.tripwireUDP.contains(p.destinationPort) else { return skip(\.notWatched) }
            guard host.isProtected(p.destination) else { return skip(\.notOurs) }
            if host.hasListener(.udp, p.destination, p.destinationPort) { return skip(\.serviceRunning) }
            return probe(.udp, .udp, p, now: now, wallTime: wallTime)
        case .portUnreachable:
            // We quote the scanner's datagram: it came from the scanner to our port.
            guard host.isProtected(p.source), p.embeddedSource == p.destination else { return skip(\.notOurs) }
            return negativeReply(p.embeddedProtocol, scanner: p.destination, target: p.source,
                                 port: p.destinationPort, now: now, wallTime: wallTime)
        }
    }

    /// A completed handshake or datagram on a connect-mode socket.
    package func connection(from source: IPAddress, to destination: IPAddress, proto: TransportProtocol,
                           port: UInt16, now: Int64, wallTime: EpochNanos) -> DetectedEvent? {
        var p = ParsedPacket()
        p.source = source
        p.destination = destination
        p.destinationPort = port
        p.ipOptions = .unknown
        return probe(.connect, proto, p, now: now, wallTime: wallTime)
    }

    @inline(__always)
    private func skip(_ counter: WritableKeyPath<DetectorCounters, UInt64>) -> DetectedEvent? {
        counters[keyPath: counter] &+= 1
        return nil
    }

    // MARK: tripwire probes

    private func probe(_ kind: ProbeKind, _ proto: TransportProtocol, _ p: ParsedPacket,
                       now: Int64, wallTime: EpochNanos) -> DetectedEvent? {
        let source = p.source
        if source.isUnspecified || source.isMulticastOrBroadcast { return skip(\.invalidSource) }
        var event = ScanEvent(time: wallTime, source: source, destination: p.destination, proto: proto,
                              port: p.destinationPort, kind: kind, ipOptions: p.ipOptions)
        counters.probes &+= 1

        // Portsentry's order: ignore list first (nothing else is decided, nothing remembered),
        // then the trigger, then the local check.
        if ignore.contains(source) {
            event.ignored = .yes
            event.ignoreReason = .ignoreFile
            counters.ignored &+= 1
            return DetectedEvent(event: event, sourceEventNumber: 0, sourceDistinctPorts: 0)
        }
        if source == p.destination || host.ownAddresses.contains(source) {
            event.ignored = .yes
            event.triggered = .yes
            event.noblock = .yes
            event.blocked = .no
            event.ignoreReason = source == p.destination ? .sameSourceAndDestination : .ownAddress
            counters.ignored &+= 1
            return DetectedEvent(event: event, sourceEventNumber: 0, sourceDistinctPorts: 0)
        }

        event.ignored = .no
        let slot = table.slot(for: source, now: now)
        if now &- table[slot].triggerWindowStart > settings.triggerWindow {
            table[slot].triggerWindowStart = now
            table[slot].triggerCount = 0
        }
        table[slot].triggerCount &+= 1
        let triggered = Int(table[slot].triggerCount) >= max(settings.scanTrigger, 1)
        event.triggered = TriState(triggered)
        if !triggered { counters.belowTrigger &+= 1 }
        if table.notePort(slot: slot, key: DetectorKeys.key(proto, p.destinationPort, tripwire: true)) {
            table[slot].distinctPorts &+= 1
        }
        return DetectedEvent(event: event, sourceEventNumber: nextEventNumber(slot, now),
                             sourceDistinctPorts: table[slot].distinctPorts)
    }

    // MARK: closed-port scans

    private func negativeReply(_ proto: TransportProtocol, scanner: IPAddress, target: IPAddress, port: UInt16,
                               now: Int64, wallTime: EpochNanos) -> DetectedEvent? {
        guard settings.closedPortDetection else { return skip(\.negativeRepliesUnused) }
        // Outgoing connections and late replies to them use ephemeral ports: a reset there
        // says nothing about the peer.
        if host.ephemeralPorts.contains(port) { return skip(\.negativeRepliesUnused) }
        // A tripwire already produced an event for this probe.
        if (proto == .tcp ? settings.tripwireTCP : settings.tripwireUDP).contains(port) {
            return skip(\.negativeRepliesUnused)
        }
        if scanner.isUnspecified || scanner.isMulticastOrBroadcast || ignore.contains(scanner)
            || host.ownAddresses.contains(scanner) || scanner == target {
            return skip(\.negativeRepliesUnused)
        }
        counters.negativeReplies &+= 1

        let slot = table.slot(for: scanner, now: now)
        if now &- table[slot].lastNewClosedPort > settings.closedPortMaxGap {
            // scanlogd's rule: a scan is a run of new ports with no gap longer than this.
            table[slot].closedWeight = 0
            table[slot].closedPorts = 0
            table[slot].closedScanReported = false
            table.resetClosedPorts(slot: slot)
        }
        guard table.notePort(slot: slot, key: DetectorKeys.key(proto, port, tripwire: false)) else { return nil }
        table[slot].distinctPorts &+= 1
        table[slot].closedPorts &+= 1
        table[slot].lastNewClosedPort = now
        table[slot].closedWeight &+= UInt32(port < 1024 ? settings.weightPrivileged : settings.weightHigh)
        guard !table[slot].closedScanReported,
              Int(table[slot].closedWeight) >= settings.closedPortThreshold else { return nil }
        table[slot].closedScanReported = true

        var event = ScanEvent(time: wallTime, source: scanner, destination: target, proto: proto, port: port,
                              kind: .closedPortScan(ports: Int(table[slot].closedPorts)), ipOptions: .unknown)
        // The score is its own threshold; SCAN_TRIGGER counts single probes.
        event.ignored = .no
        event.triggered = .yes
        counters.closedPortScans &+= 1
        return DetectedEvent(event: event, sourceEventNumber: nextEventNumber(slot, now),
                             sourceDistinctPorts: table[slot].distinctPorts)
    }

    @inline(__always)
    private func nextEventNumber(_ slot: Int, _ now: Int64) -> UInt32 {
        if now &- table[slot].logWindowStart > settings.logWindow {
            table[slot].logWindowStart = now
            table[slot].eventsInLogWindow = 0
        }
        table[slot].eventsInLogWindow &+= 1
        return table[slot].eventsInLogWindow
    }
}

/// Why packets did or did not become events. Every packet lands in exactly one bucket.
package struct DetectorCounters: Sendable {
    package var probes: UInt64 = 0
    package var ignored: UInt64 = 0
    package var belowTrigger: UInt64 = 0
    package var negativeReplies: UInt64 = 0
    package var closedPortScans: UInt64 = 0
    package var notWatched: UInt64 = 0
    package var notOurs: UInt64 = 0
    package var backscatter: UInt64 = 0
    package var possibleConnection: UInt64 = 0
    package var serviceRunning: UInt64 = 0
    package var invalidSource: UInt64 = 0
    package var negativeRepliesUnused: UInt64 = 0

    package init() {}
}
