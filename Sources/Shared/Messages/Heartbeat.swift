/// A sensor's signed status report (`POST /v1/heartbeat`, every 30 s and on change). The
/// controller keeps the latest one per sensor, shows it to operators and reads `protection`
/// (see `ProtectionReport`) and `uplink` from it. Every field is optional on the reading side:
/// a sensor of an older or newer version still reports what it has.
public struct Heartbeat: Codable, Equatable, Sendable {
    public var version: String?
    /// "tcp", "udp", "stcp", ... (the sensor's mode).
    public var mode: String?
    public var uptimeSeconds: Int64?
    public var interfaces: [String]?
    public var pcapReceived: Int64?
    public var pcapDropped: Int64?
    public var probes: Int64?
    public var closedPortScans: Int64?
    public var eventsWritten: Int64?
    public var eventsSuppressed: Int64?
    public var blocks: Int64?
    public var breakerOpen: Bool?
    /// Addresses the sensor refuses to block (its own, gateways, resolvers, sessions).
    public var protected: [IPAddress]?
    public var blocklistRevision: Int64?
    public var blocklistEntries: Int64?
    public var blocklistSkipped: Int64?
    public var blocklistStale: Bool?
    public var protection: ProtectionReport?
    public var uplink: UplinkCounters?

    enum CodingKeys: String, CodingKey {
        case version, mode, interfaces, probes, blocks, protected, protection, uplink
        case uptimeSeconds = "uptime_seconds", pcapReceived = "pcap_received", pcapDropped = "pcap_dropped"
        case closedPortScans = "closed_port_scans", eventsWritten = "events_written", eventsSuppressed = "events_suppressed"
        case breakerOpen = "breaker_open", blocklistRevision = "blocklist_revision", blocklistEntries = "blocklist_entries"
        case blocklistSkipped = "blocklist_skipped", blocklistStale = "blocklist_stale"
    }

    public init() {}
}

/// What became of a sensor's event batches since it started: every event sealed ends up
/// delivered, quarantined or dropped, or is still in the spool.
public struct UplinkCounters: Codable, Equatable, Sendable {
    public var sealedBatches = 0, sealedEvents = 0
    public var deliveredBatches = 0, deliveredEvents = 0
    public var quarantinedBatches = 0, quarantinedEvents = 0
    /// Spool full (oldest dropped) or the spool could not be written.
    public var droppedBatches = 0, droppedEvents = 0
    /// Controller answers that kept the spool (unknown sensor, revoked, bad signature).
    public var refusals = 0
    /// Batches renumbered after the controller said their sequence was already used.
    public var renumbered = 0
    /// Requests the controller answered (batches and heartbeats), and the connections they
    /// had to open: far fewer connections than answers means the connection is reused.
    public var answered = 0, connectionsOpened = 0
    /// Batches and bytes waiting in the spool when the report was made.
    public var spoolBatches = 0, spoolBytes = 0

    enum CodingKeys: String, CodingKey, CaseIterable {
        case sealedBatches = "sealed_batches", sealedEvents = "sealed_events"
        case deliveredBatches = "delivered_batches", deliveredEvents = "delivered_events"
        case quarantinedBatches = "quarantined_batches", quarantinedEvents = "quarantined_events"
        case droppedBatches = "dropped_batches", droppedEvents = "dropped_events"
        case refusals, renumbered, answered
        case connectionsOpened = "connections_opened", spoolBatches = "spool_batches", spoolBytes = "spool_bytes"
    }

    public init() {}

    /// Absent counters read as 0 (a sensor from before the counter existed).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func count(_ key: CodingKeys) throws -> Int { try c.decodeIfPresent(Int.self, forKey: key) ?? 0 }
        (sealedBatches, sealedEvents) = (try count(.sealedBatches), try count(.sealedEvents))
        (deliveredBatches, deliveredEvents) = (try count(.deliveredBatches), try count(.deliveredEvents))
        (quarantinedBatches, quarantinedEvents) = (try count(.quarantinedBatches), try count(.quarantinedEvents))
        (droppedBatches, droppedEvents) = (try count(.droppedBatches), try count(.droppedEvents))
        (refusals, renumbered, answered) = (try count(.refusals), try count(.renumbered), try count(.answered))
        (connectionsOpened, spoolBatches, spoolBytes) = (try count(.connectionsOpened), try count(.spoolBatches), try count(.spoolBytes))
    }
}
