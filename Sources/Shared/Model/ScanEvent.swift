/// Transport protocol of a probe.
public enum TransportProtocol: UInt8, Sendable, Codable, CustomStringConvertible {
    case tcp = 6
    case udp = 17

    public var description: String { self == .tcp ? "TCP" : "UDP" }
}

/// TCP header flag bits (RFC 9293), as they appear in byte 13 of the header.
public struct TCPFlags: OptionSet, Hashable, Sendable, Codable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    // Computed and inlinable, not `static let`: a stored global in another module is reached
    // through a lazy-initialisation accessor on every use, and the parser and detector test
    // these flags on every packet.
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }

    /// The six classic flags; ECE/CWR only negotiate congestion signalling (an ECN
    /// SYN from a Linux client carries them) and say nothing about the scan type.
    @inlinable public var classic: TCPFlags { TCPFlags(rawValue: rawValue & 0x3F) }
}

/// What a probe was. The labels of the classic kinds are Portsentry 2.x's, byte for byte,
/// so existing log parsers keep working; the kinds 2.x never sees have labels of their own.
public enum ProbeKind: Hashable, Sendable {
    case tcpSYN
    case tcpFIN
    case tcpXMAS
    case tcpNULL
    /// A bare ACK: `nmap -sA` and `-sW` (2.x drops these).
    case tcpACK
    /// FIN+ACK: `nmap -sM` (2.x drops these).
    case tcpMaimon
    /// Any other flag combination, labelled with its flags.
    case tcpOther(TCPFlags)
    /// The first fragment of a fragmented TCP probe whose flags were pushed into a later
    /// fragment (`nmap -f`): an evasion technique in itself.
    case tcpFragmented
    case udp
    /// A completed TCP handshake or a UDP datagram received on a bound socket.
    case connect
    /// A scan of closed, non-tripwire ports, seen through the host's own negative replies
    /// (RST for TCP, ICMP port unreachable for UDP) and scored scanlogd-style.
    case closedPortScan(ports: Int)

    public var label: String {
        switch self {
        case .tcpSYN: return "TCP SYN/Normal scan"
        case .tcpFIN: return "TCP FIN scan"
        case .tcpXMAS: return "TCP XMAS scan"
        case .tcpNULL: return "TCP NULL scan"
        case .tcpACK: return "TCP ACK scan"
        case .tcpMaimon: return "TCP Maimon scan"
        case .tcpOther(let f):
            func b(_ x: TCPFlags) -> Int { f.contains(x) ? 1 : 0 }
            return "Unknown Type: TCP Packet Flags: SYN: \(b(.syn)) FIN: \(b(.fin)) ACK: \(b(.ack)) PSH: \(b(.psh)) URG: \(b(.urg)) RST: \(b(.rst))"
        case .tcpFragmented: return "TCP fragmented probe"
        case .udp: return "UDP"
        case .connect: return "Connect"
        case .closedPortScan(let n): return "Closed-port scan: \(n) ports"
        }
    }

    /// A short machine name for JSON and metrics.
    public var name: String {
        switch self {
        case .tcpSYN: return "syn"
        case .tcpFIN: return "fin"
        case .tcpXMAS: return "xmas"
        case .tcpNULL: return "null"
        case .tcpACK: return "ack"
        case .tcpMaimon: return "maimon"
        case .tcpOther: return "tcp-other"
        case .tcpFragmented: return "tcp-fragment"
        case .udp: return "udp"
        case .connect: return "connect"
        case .closedPortScan: return "closed-port-scan"
        }
    }

    /// How hard the evidence is to forge, strongest first. A completed handshake proves the
    /// source address; a stealth probe or a negative reply can be spoofed; UDP is weakest.
    public var evidence: Evidence {
        switch self {
        case .connect: return .handshake
        case .udp: return .udp
        case .closedPortScan: return .negativeReply
        default: return .tripwire
        }
    }
}

/// How hard a probe is to forge. On the wire and in the store it travels as its name.
public enum Evidence: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case udp = 1
    case negativeReply = 2
    case tripwire = 3
    case handshake = 4

    public static func < (a: Evidence, b: Evidence) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .udp: return "udp"
        case .negativeReply: return "negative-reply"
        case .tripwire: return "tripwire"
        case .handshake: return "handshake"
        }
    }

    public init?(name: String) {
        guard let e = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = e
    }
}

extension Evidence: Codable {
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let e = Evidence(name: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown evidence class \(name)"))
        }
        self = e
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Portsentry's `true|false|unset` log fields.
public enum TriState: Sendable, Codable, CustomStringConvertible {
    case unset, yes, no

    public init(_ b: Bool) { self = b ? .yes : .no }

    public var description: String {
        switch self {
        case .unset: return "unset"
        case .yes: return "true"
        case .no: return "false"
        }
    }
}

/// `IP opts: [...]`: whether the IPv4 header carried options (a detection-avoidance hint).
public enum IPOptionsFlag: Sendable, Codable, CustomStringConvertible {
    case set, notSet, unknown

    public var description: String {
        switch self {
        case .set: return "set"
        case .notSet: return "not set"
        case .unknown: return "unknown"
        }
    }
}

/// Nanoseconds since the Unix epoch.
public typealias EpochNanos = Int64

/// One detection: a probe (or a scored scan) from `source` against `destination:port`,
/// with what the sensor decided. A plain value: building one never allocates.
public struct ScanEvent: Sendable {
    public var time: EpochNanos
    public var source: IPAddress
    public var destination: IPAddress
    public var proto: TransportProtocol
    public var port: UInt16
    public var kind: ProbeKind
    public var ipOptions: IPOptionsFlag
    public var ignored: TriState = .unset
    public var triggered: TriState = .unset
    public var noblock: TriState = .unset
    public var blocked: TriState = .unset
    /// Why the event was ignored, when it was (ignore file, own address, ...).
    public var ignoreReason: IgnoreReason? = nil

    public init(time: EpochNanos, source: IPAddress, destination: IPAddress, proto: TransportProtocol,
                port: UInt16, kind: ProbeKind, ipOptions: IPOptionsFlag) {
        self.time = time
        self.source = source
        self.destination = destination
        self.proto = proto
        self.port = port
        self.kind = kind
        self.ipOptions = ipOptions
    }

    /// True when the event should lead to a response (not ignored, trigger reached).
    public var isActionable: Bool { ignored != .yes && triggered == .yes }
}

public enum IgnoreReason: String, Sendable, Codable {
    case ignoreFile = "ignore-file"
    case ownAddress = "own-address"
    case sameSourceAndDestination = "source-equals-destination"
    case protected = "protected"
}
