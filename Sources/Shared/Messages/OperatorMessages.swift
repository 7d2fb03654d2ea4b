/// The operator API's messages (`/v1/sensors`, `/v1/events`, `/v1/decisions`, `/v1/allowlist`,
/// `/v1/fleet`), and what `portsentry-controller ... --json` prints: one shape for both, so
/// a console or a script reads either.

/// Who made a fleet-wide decision.
public enum DecisionOrigin: String, Codable, Sendable, CaseIterable {
    /// A sensor blocked locally and the promotion policy carried it fleet-wide.
    case sensor
    /// The controller's cross-host correlation.
    case correlation
    /// An operator (`portsentry-controller ban`, `POST /v1/decisions`).
    case manual
}

/// `POST /v1/decisions` and `POST /v1/allowlist`: what to block or allow, for how long
/// (seconds, 0 = until lifted; integers only, at most `Bounds.maxDurationSeconds`), and why.
public struct ScopeRequest: Codable, Equatable, Sendable {
    public var scope: IPPrefix
    public var duration: Int64?
    public var reason: String?

    public init(scope: IPPrefix, duration: Int64?, reason: String?) {
        (self.scope, self.duration, self.reason) = (scope, duration, reason)
    }
}

public struct EventView: Codable, Equatable, Sendable {
    public var id: String
    public var sensor: String
    public var timeNanos: Int64
    public var source: String
    public var destination: String
    public var `protocol`: String
    public var port: Int
    public var type: String
    public var evidence: String
    public var receivedMillis: Int64
    public var blocked: Bool?

    enum CodingKeys: String, CodingKey {
        case id, sensor, source, destination, `protocol`, port, type, evidence, blocked
        case timeNanos = "time_ns", receivedMillis = "received_ms"
    }

    public init(id: String, sensor: String, timeNanos: Int64, source: String, destination: String, protocol: String, port: Int,
                type: String, evidence: String, receivedMillis: Int64, blocked: Bool?) {
        (self.id, self.sensor, self.timeNanos) = (id, sensor, timeNanos)
        (self.source, self.destination, self.protocol, self.port) = (source, destination, `protocol`, port)
        (self.type, self.evidence, self.receivedMillis, self.blocked) = (type, evidence, receivedMillis, blocked)
    }
}

public struct DecisionView: Codable, Equatable, Sendable {
    public var id: Int64
    public var scope: String
    public var origin: DecisionOrigin
    public var reason: String
    public var createdMillis: Int64
    /// Epoch seconds; 0 means until lifted.
    public var expires: Int64
    public var revoked: Bool
    public var offense: Int
    /// Ids of the events behind the decision (at most 50).
    public var events: [String]

    enum CodingKeys: String, CodingKey {
        case id, scope, origin, reason, expires, revoked, offense, events
        case createdMillis = "created_ms"
    }

    public init(id: Int64, scope: String, origin: DecisionOrigin, reason: String, createdMillis: Int64, expires: Int64, revoked: Bool,
                offense: Int, events: [String]) {
        (self.id, self.scope, self.origin, self.reason) = (id, scope, origin, reason)
        (self.createdMillis, self.expires, self.revoked, self.offense, self.events) = (createdMillis, expires, revoked, offense, events)
    }
}

public struct AllowView: Codable, Equatable, Sendable {
    public var scope: String
    public var reason: String
    public var createdMillis: Int64
    /// Epoch seconds; 0 means until removed.
    public var expires: Int64

    enum CodingKeys: String, CodingKey {
        case scope, reason, expires
        case createdMillis = "created_ms"
    }

    public init(scope: String, reason: String, createdMillis: Int64, expires: Int64) {
        (self.scope, self.reason, self.createdMillis, self.expires) = (scope, reason, createdMillis, expires)
    }
}

public struct SensorView: Codable, Equatable, Sendable {
    public struct BlockList: Codable, Equatable, Sendable {
        public var appliedRevision: Int64
        public var revisionLag: Int64
        public var digest: String
        public var appliedMillis: Int64

        enum CodingKeys: String, CodingKey {
            case digest
            case appliedRevision = "applied_revision", revisionLag = "revision_lag", appliedMillis = "applied_ms"
        }

        public init(appliedRevision: Int64, revisionLag: Int64, digest: String, appliedMillis: Int64) {
            (self.appliedRevision, self.revisionLag, self.digest, self.appliedMillis) = (appliedRevision, revisionLag, digest, appliedMillis)
        }
    }

    public var name: String
    public var revoked: Bool
    public var lastSequence: Int64
    public var lastSeen: Int64
    public var lagSeconds: Int64
    public var version: String
    public var blocklist: BlockList
    /// The sensor's last heartbeat.
    public var status: Heartbeat?

    enum CodingKeys: String, CodingKey {
        case name, revoked, version, blocklist, status
        case lastSequence = "last_sequence", lastSeen = "last_seen", lagSeconds = "lag_seconds"
    }

    public init(name: String, revoked: Bool, lastSequence: Int64, lastSeen: Int64, lagSeconds: Int64, version: String,
                blocklist: BlockList, status: Heartbeat?) {
        (self.name, self.revoked, self.lastSequence, self.lastSeen) = (name, revoked, lastSequence, lastSeen)
        (self.lagSeconds, self.version, self.blocklist, self.status) = (lagSeconds, version, blocklist, status)
    }
}

/// `GET /v1/fleet`: distribution and protection state at a glance.
public struct FleetView: Codable, Equatable, Sendable {
    public struct Latency: Codable, Equatable, Sendable {
        public var count: Int
        public var p50: Double?
        public var p99: Double?
        public init(count: Int, p50: Double?, p99: Double?) { (self.count, self.p50, self.p99) = (count, p50, p99) }
    }

    public struct Breaker: Codable, Equatable, Sendable {
        public var open: Bool
        public var limitPerMinute: Int
        public var refused: Int
        public var openings: Int

        enum CodingKeys: String, CodingKey {
            case open, refused, openings
            case limitPerMinute = "limit_per_minute"
        }

        public init(open: Bool, limitPerMinute: Int, refused: Int, openings: Int) {
            (self.open, self.limitPerMinute, self.refused, self.openings) = (open, limitPerMinute, refused, openings)
        }
    }

    public struct Protected: Codable, Equatable, Sendable {
        public var scope: String
        public var kind: String
        public var sensor: String
        public init(scope: String, kind: String, sensor: String) { (self.scope, self.kind, self.sensor) = (scope, kind, sensor) }
    }

    public var revision: Int64
    public var timeToEnforceSeconds: Latency
    public var trackedSources: Int
    public var breaker: Breaker
    public var protected: [Protected]
    public var sensors: [SensorView]

    enum CodingKeys: String, CodingKey {
        case revision, breaker, protected, sensors
        case timeToEnforceSeconds = "time_to_enforce_seconds", trackedSources = "tracked_sources"
    }

    public init(revision: Int64, timeToEnforceSeconds: Latency, trackedSources: Int, breaker: Breaker, protected: [Protected],
                sensors: [SensorView]) {
        (self.revision, self.timeToEnforceSeconds, self.trackedSources) = (revision, timeToEnforceSeconds, trackedSources)
        (self.breaker, self.protected, self.sensors) = (breaker, protected, sensors)
    }
}

/// Every other operator answer: the lists and the outcome of a change. Each answer fills the
/// fields that apply (`{"decisions": [...]}`, `{"lifted": 2}`, ...).
public struct OperatorReply: Codable, Equatable, Sendable {
    public var sensors: [SensorView]?
    public var events: [EventView]?
    public var decisions: [DecisionView]?
    public var allowlist: [AllowView]?
    public var decision: DecisionView?
    public var revision: Int64?
    /// Active decisions a new ban overlaps.
    public var overlaps: [String]?
    public var alreadyCovered: Bool?
    public var lifted: Int?
    public var allowlisted: String?
    public var removed: Bool?
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case sensors, events, decisions, allowlist, decision, revision, overlaps, lifted, allowlisted, removed, error
        case alreadyCovered = "already_covered"
    }

    public init(sensors: [SensorView]? = nil, events: [EventView]? = nil, decisions: [DecisionView]? = nil, allowlist: [AllowView]? = nil,
                decision: DecisionView? = nil, revision: Int64? = nil, overlaps: [String]? = nil, alreadyCovered: Bool? = nil,
                lifted: Int? = nil, allowlisted: String? = nil, removed: Bool? = nil, error: String? = nil) {
        (self.sensors, self.events, self.decisions, self.allowlist) = (sensors, events, decisions, allowlist)
        (self.decision, self.revision, self.overlaps, self.alreadyCovered) = (decision, revision, overlaps, alreadyCovered)
        (self.lifted, self.allowlisted, self.removed, self.error) = (lifted, allowlisted, removed, error)
    }
}
