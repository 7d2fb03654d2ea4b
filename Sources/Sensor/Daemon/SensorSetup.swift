import PortsentryShared
import SensorCore

/// How the sensor watches: Portsentry's modes.
enum WatchMode: String, Sendable {
    /// libpcap; tripwires are TCP_PORTS / UDP_PORTS (2.x `--stealth`, 1.2 `-stcp`/`-sudp`).
    case stealth
    /// libpcap; tripwires are every port below ADVANCED_PORTS_* minus ADVANCED_EXCLUDE_*
    /// and listeners (1.2 `-atcp`/`-audp`).
    case advanced
    /// Bound sockets on TCP_PORTS / UDP_PORTS; only completed handshakes count (2.x `--connect`).
    case connect
}

/// Options from the command line that the config file does not carry.
struct RunOptions: Sendable {
    var mode: WatchMode = .stealth
    /// 1.2 ran one process per protocol; by default we watch both.
    var watchTCP = true
    var watchUDP = true
    var interfaces = InterfaceSelection()
    var serviceCheck = true
    var consoleFormat: EventReporter.ConsoleFormat = .text
    /// Started with a 1.2 mode switch (-tcp, -udp, -stcp, -sudp, -atcp, -audp): 1.2's own
    /// attackalert lines are written as well as the 2.x lines.
    var legacy12 = false

    /// The 1.2 switch this run was started with (`tcp`, `sudp`, ...), when it watches one protocol.
    var legacy12Name: String? {
        guard legacy12, watchTCP != watchUDP else { return nil }
        let prefix = mode == .connect ? "" : mode == .stealth ? "s" : "a"
        return prefix + (watchTCP ? "tcp" : "udp")
    }
}

/// Derives the detector's settings from config + mode: one place decides what is a tripwire.
enum SettingsBuilder {
    static func detection(_ c: SensorConfig, _ o: RunOptions) -> DetectionSettings {
        var s = DetectionSettings()
        switch o.mode {
        case .stealth, .connect:
            s.tripwireTCP = o.watchTCP ? c.tcpPorts : PortSet()
            s.tripwireUDP = o.watchUDP ? c.udpPorts : PortSet()
        case .advanced:
            if o.watchTCP {
                s.tripwireTCP = PortSet([1...(c.advancedPortsTCP - 1)])
                s.tripwireTCP.subtract(c.advancedExcludeTCP)
            }
            if o.watchUDP {
                s.tripwireUDP = PortSet([1...(c.advancedPortsUDP - 1)])
                s.tripwireUDP.subtract(c.advancedExcludeUDP)
            }
        }
        s.scanTrigger = c.scanTrigger
        s.triggerWindow = c.scanTriggerWindow * nanosPerSecond
        s.closedPortDetection = c.closedPortDetection && o.mode != .connect && o.watchTCP
        s.closedPortThreshold = c.closedPortThreshold
        s.closedPortMaxGap = c.closedPortMaxGap * nanosPerSecond
        s.weightPrivileged = c.closedPortWeightPrivileged
        s.weightHigh = c.closedPortWeightHigh
        s.tableCapacity = c.stateTableSize
        return s
    }

    /// Problems worth saying out loud at start-up (not errors: the config is valid).
    static func warnings(_ s: DetectionSettings, _ c: SensorConfig, ephemeral: ClosedRange<UInt16>) -> [String] {
        var out: [String] = []
        let overlapTCP = s.tripwireTCP.ranges.contains { $0.overlaps(ephemeral) }
        let overlapUDP = s.tripwireUDP.ranges.contains { $0.overlaps(ephemeral) }
        if overlapTCP || overlapUDP {
            out.append("tripwire ports overlap the ephemeral range \(ephemeral.lowerBound)-\(ephemeral.upperBound) "
                + "used by outgoing connections: ACK-type probes there are not counted, and late replies to this "
                + "host's own connections may look like probes")
        }
        if s.tripwireTCP.isEmpty, s.tripwireUDP.isEmpty {
            out.append("no tripwire ports: set TCP_PORTS and/or UDP_PORTS (only closed-port scans will be seen)")
        }
        if c.resolveHost {
            out.append("RESOLVE_HOST=1: names are not resolved; log lines carry addresses only (a scanner controls "
                + "its own reverse DNS, and its text must not reach lines fail2ban parses)")
        }
        return out
    }
}
