import PortsentryShared

/// The control socket's protocol (`portsentry status`, `portsentry blocks ...`): one JSON
/// line each way, root only. A request names its command; the reply says `ok` and fills the
/// fields that command answers with.
struct ControlRequest: Codable, Equatable, Sendable {
    enum Command: String, Codable, Sendable {
        case status
        case blocksList = "blocks.list"
        case blocksAdd = "blocks.add"
        case blocksRemove = "blocks.remove"
        case blocksFlush = "blocks.flush"
    }

    var command: Command
    /// An address or prefix (`blocks.add`, `blocks.remove`).
    var target: String?
    /// `blocks.add`: how long (absent: BLOCK_DURATION); `permanent` wins.
    var seconds: Int64?
    var permanent: Bool?

    init(_ command: Command, target: String? = nil, seconds: Int64? = nil, permanent: Bool? = nil) {
        (self.command, self.target, self.seconds, self.permanent) = (command, target, seconds, permanent)
    }
}

struct ControlReply: Codable, Equatable, Sendable {
    var ok: Bool
    var error: String?
    var status: SensorStatus?
    var blocks: [BlockView]?
    /// The firewall backend in use (`blocks.list`).
    var firewall: String?
    /// The block added or removed, and until when (epoch seconds; absent: permanent).
    var target: String?
    var expires: Int64?
    /// Blocks lifted by `blocks.flush`.
    var removed: Int?

    static func failure(_ why: String) -> ControlReply { ControlReply(ok: false, error: why) }

    init(ok: Bool = true, error: String? = nil, status: SensorStatus? = nil, blocks: [BlockView]? = nil, firewall: String? = nil,
         target: String? = nil, expires: Int64? = nil, removed: Int? = nil) {
        (self.ok, self.error, self.status, self.blocks, self.firewall) = (ok, error, status, blocks, firewall)
        (self.target, self.expires, self.removed) = (target, expires, removed)
    }
}

/// One block in force, as `portsentry blocks list` shows it.
struct BlockView: Codable, Equatable, Sendable {
    var target: String
    /// "detection", "manual" or "kill-actions" (hosts KILL_* actions ran for, from BLOCKED_FILE).
    var origin: String
    var reason: String
    var created: Int64?
    var offense: Int?
    var expires: Int64?
    /// Seconds left (absent: permanent).
    var remaining: Int64?
}

/// `portsentry status`: what the sensor sees and does. Counters are since start.
struct SensorStatus: Codable, Equatable, Sendable {
    struct Interface: Codable, Equatable, Sendable {
        var name: String
        var received: UInt64?
        var dropped: UInt64?
        var interfaceDropped: UInt64?

        enum CodingKeys: String, CodingKey {
            case name, received, dropped
            case interfaceDropped = "interface_dropped"
        }
    }

    struct Detection: Codable, Equatable, Sendable {
        var probes: UInt64, ignored: UInt64, belowTrigger: UInt64, closedPortScans: UInt64, negativeReplies: UInt64
        var backscatter: UInt64, serviceRunning: UInt64
        var tableUsed: Int, tableCapacity: Int, tableBytes: Int, tableEvictions: UInt64

        enum CodingKeys: String, CodingKey {
            case probes, ignored, backscatter
            case belowTrigger = "below_trigger", closedPortScans = "closed_port_scans", negativeReplies = "negative_replies"
            case serviceRunning = "service_running", tableUsed = "table_used", tableCapacity = "table_capacity"
            case tableBytes = "table_bytes", tableEvictions = "table_evictions"
        }
    }

    struct Blocking: Codable, Equatable, Sendable {
        var firewall: String, dryRun: Bool, blocks: Int, killActionHosts: Int
        var blocked: UInt64, alreadyBlocked: UInt64, protectedSkipped: UInt64, breakerOpen: Bool, breakerRefused: UInt64
        var failures: UInt64, expired: UInt64, lastBlockLatencyMicros: Int64, maxBlockLatencyMicros: Int64
        /// KILL_* actions waiting for (or running on) the worker, and those refused because it was full.
        var commandsQueued: Int, commandsDropped: UInt64

        enum CodingKeys: String, CodingKey {
            case firewall, blocks, blocked, failures, expired
            case dryRun = "dry_run", killActionHosts = "kill_action_hosts", alreadyBlocked = "already_blocked"
            case protectedSkipped = "protected_skipped", breakerOpen = "breaker_open", breakerRefused = "breaker_refused"
            case lastBlockLatencyMicros = "last_block_latency_us", maxBlockLatencyMicros = "max_block_latency_us"
            case commandsQueued = "commands_queued", commandsDropped = "commands_dropped"
        }
    }

    struct Output: Codable, Equatable, Sendable {
        var written: UInt64
        var suppressed: UInt64
    }

    struct Fleet: Codable, Equatable, Sendable {
        var enrolled: Bool
        var revision: Int64?, entries: Int?, connected: Bool?, skippedNow: Int?, skippedTotal: Int64?, stale: Bool?
        /// Seconds since the last fresh signed answer (-1: none yet).
        var freshAgeSeconds: Int64?

        enum CodingKeys: String, CodingKey {
            case enrolled, revision, entries, connected, stale
            case skippedNow = "skipped_now", skippedTotal = "skipped_total", freshAgeSeconds = "fresh_age_seconds"
        }
    }

    var version: String
    var mode: String
    var uptimeSeconds: Int64
    var interfaces: [Interface]
    var detector: Detection
    var blocking: Blocking
    var output: Output
    var fleet: Fleet
    /// Absent when the sensor is not enrolled.
    var uplink: UplinkCounters?

    enum CodingKeys: String, CodingKey {
        case version, mode, interfaces, detector, blocking, output, fleet, uplink
        case uptimeSeconds = "uptime_seconds"
    }
}
