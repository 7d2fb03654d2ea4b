/// The body of a signed batch (`POST /v1/events`): `{"events":[...]}`. The digest and
/// signature in the headers cover these exact bytes.
public struct EventBatch: Codable, Equatable, Sendable {
    public var events: [WireEvent]

    public init(events: [WireEvent]) { self.events = events }
    public init(_ events: [ScanEvent]) { self.events = events.map(WireEvent.init) }
}

/// One detection as it travels to the controller. Addresses and the evidence class are
/// typed, so a malformed one is refused where the batch is decoded, naming the field.
public struct WireEvent: Codable, Equatable, Sendable {
    public var timeNanos: Int64
    public var source: IPAddress
    public var destination: IPAddress
    /// "TCP" or "UDP" (text, so a later protocol does not change the field's type).
    public var `protocol`: String
    public var port: Int
    /// `ProbeKind.name`: "syn", "udp", "connect", ...
    public var type: String
    public var evidence: Evidence
    public var ignored: Bool?
    public var triggered: Bool?
    public var blocked: Bool?
    /// Closed-port scans: how many ports.
    public var ports: Int?
    /// Unusual TCP flag mixes: the flag byte.
    public var tcpFlags: Int?

    enum CodingKeys: String, CodingKey {
        case timeNanos = "time_ns", source, destination, `protocol`, port, type, evidence, ignored, triggered, blocked, ports
        case tcpFlags = "tcp_flags"
    }

    public init(timeNanos: Int64, source: IPAddress, destination: IPAddress, protocol: String, port: Int, type: String,
                evidence: Evidence, blocked: Bool? = nil) {
        self.timeNanos = timeNanos
        self.source = source
        self.destination = destination
        self.protocol = `protocol`
        self.port = port
        self.type = type
        self.evidence = evidence
        self.blocked = blocked
    }

    public init(_ e: ScanEvent) {
        self.init(timeNanos: e.time, source: e.source, destination: e.destination, protocol: e.proto.description, port: Int(e.port),
                  type: e.kind.name, evidence: e.kind.evidence, blocked: e.blocked.bool)
        ignored = e.ignored.bool
        triggered = e.triggered.bool
        if case .closedPortScan(let n) = e.kind { ports = n }
        if case .tcpOther(let flags) = e.kind { tcpFlags = Int(flags.rawValue) }
    }
}

extension TriState {
    /// true, false, or nil when unset.
    public var bool: Bool? {
        switch self {
        case .yes: return true
        case .no: return false
        case .unset: return nil
        }
    }
}

/// The controller's answer to a batch, a heartbeat or a refused request. Every field is
/// optional: each answer fills the ones that apply.
public struct ControllerReply: Codable, Equatable, Sendable {
    /// Events stored from an accepted batch (0 for a duplicate).
    public var stored: Int?
    /// The batch was already stored (a retry).
    public var duplicate: Bool?
    public var ok: Bool?
    /// Why the request was refused.
    public var error: String?
    /// On a 409 for a batch: the last sequence the controller holds for this sensor, so the
    /// sensor renumbers its spool past it.
    public var lastSequence: Int64?

    enum CodingKeys: String, CodingKey {
        case stored, duplicate, ok, error
        case lastSequence = "last_sequence"
    }

    public init(stored: Int? = nil, duplicate: Bool? = nil, ok: Bool? = nil, error: String? = nil, lastSequence: Int64? = nil) {
        self.stored = stored
        self.duplicate = duplicate
        self.ok = ok
        self.error = error
        self.lastSequence = lastSequence
    }
}
