import Foundation
package import PortsentryShared

/// The controller's settings: `controller.conf` in the data directory (written with every
/// default by `init`), `KEY = value` lines, `#` comments. Unknown keys and bad values are
/// errors that name the file and line. Command-line options override the file.
package struct ControllerConfig: Equatable, Sendable {
    // Service
    package var listen = "0.0.0.0"
    package var port = 8443
    // Storage (PostgreSQL when POSTGRES_HOST is set; SQLite in the data directory otherwise)
    package var postgresHost: String? = nil
    package var postgresPort = 5432
    package var postgresUser = "portsentry"
    package var postgresDatabase = "portsentry"
    package var postgresPasswordFile: String? = nil
    package var postgresTLS = false
    package var postgresCAFile: String? = nil
    /// Seconds `serve` and the CLI wait for PostgreSQL before giving up with an error.
    package var postgresConnectTimeout: Int64 = 30

    package var policy = CorrelationPolicy()
    /// Events, list changes and ended decisions older than these are deleted (RetentionService).
    package var eventRetention: Int64 = 30 * 86_400
    package var changeRetention: Int64 = 7 * 86_400
    package var decisionRetention: Int64 = 365 * 86_400

    /// Files larger than this are not a controller config.
    package static let maxBytes = 1 << 20

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package static func load(_ path: String) throws(Failure) -> ControllerConfig {
        guard FileManager.default.fileExists(atPath: path) else { return ControllerConfig() }
        var st = stat()
        guard stat(path, &st) == 0, st.st_size <= maxBytes, let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure(description: "\(path): unreadable, not UTF-8, or larger than \(maxBytes) bytes")
        }
        return try parse(text, file: path)
    }

    package static func parse(_ text: String, file: String) throws(Failure) -> ControllerConfig {
        var c = ControllerConfig()
        var seen: [String: Int] = [:]
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let at = "\(file):\(index + 1)"
            guard let eq = trimmed.firstIndex(of: "=") else { throw Failure(description: "\(at): expected KEY = value") }
            let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces).uppercased()
            var value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            // A key set twice is a mistake one of the two lines hides: refuse it (PROTECT may repeat: it adds).
            if key != "PROTECT", let first = seen[key] {
                throw Failure(description: "\(at): \(key) is already set on line \(first); remove one of them")
            }
            seen[key] = index + 1
            do { try c.set(key, value) } catch { throw Failure(description: "\(at): \(key): \(error.description)") }
        }
        try c.policy.validate(file: file)
        guard c.decisionRetention >= c.policy.offenseMemory else {
            throw Failure(description: "\(file): DECISION_RETENTION (\(c.decisionRetention) s) is shorter than OFFENSE_MEMORY (\(c.policy.offenseMemory) s): repeat offenders would be forgotten")
        }
        for (key, value) in [("EVENT_RETENTION", c.eventRetention), ("CHANGE_RETENTION", c.changeRetention)] where value < 3600 {
            throw Failure(description: "\(file): \(key) must be at least 1h (got \(value) s)")
        }
        return c
    }

    private mutating func set(_ key: String, _ value: String) throws(Failure) {
        func int(_ range: ClosedRange<Int>) throws(Failure) -> Int {
            guard let n = Int(value), range.contains(n) else { throw Failure(description: "expected a whole number in \(range), got \"\(value)\"") }
            return n
        }
        func seconds() throws(Failure) -> Int64 {
            guard let s = Self.duration(value) else {
                throw Failure(description: "expected a duration such as 600, 10m, 1h, 7d, at most 10 years (\(Bounds.maxDurationSeconds) s); got \"\(value)\"")
            }
            return s
        }
        func bool() throws(Failure) -> Bool {
            switch value.lowercased() {
            case "1", "yes", "true", "on": return true
            case "0", "no", "false", "off": return false
            default: throw Failure(description: "expected yes or no, got \"\(value)\"")
            }
        }
        switch key {
        case "LISTEN": listen = value
        case "PORT": port = try int(1...65535)
        case "POSTGRES_HOST": postgresHost = value.isEmpty ? nil : value
        case "POSTGRES_PORT": postgresPort = try int(1...65535)
        case "POSTGRES_USER": postgresUser = value
        case "POSTGRES_DATABASE": postgresDatabase = value
        case "POSTGRES_PASSWORD_FILE": postgresPasswordFile = value.isEmpty ? nil : value
        case "POSTGRES_TLS": postgresTLS = try bool()
        case "POSTGRES_CA_FILE": postgresCAFile = value.isEmpty ? nil : value
        case "POSTGRES_CONNECT_TIMEOUT": postgresConnectTimeout = Int64(try int(1...3600))
        case "CORRELATION_WINDOW": policy.window = try seconds()
        case "HORIZONTAL_HOSTS": policy.horizontalHosts = try int(1...100_000)
        case "VERTICAL_PORTS": policy.verticalPorts = try int(1...65536)
        case "QUORUM_SENSORS": policy.quorum = try int(1...10_000)
        case "PROMOTE_LOCAL_BLOCKS": policy.promoteLocalBlocks = try int(0...10_000)
        case "DISTRIBUTED_SOURCES": policy.distributedSources = try int(0...1_000_000)
        case "DISTRIBUTED_PREFIX_V4": policy.distributedPrefixV4 = try int(8...32)
        case "DISTRIBUTED_PREFIX_V6": policy.distributedPrefixV6 = try int(16...128)
        case "BLOCK_DURATION": policy.blockDuration = try seconds()
        case "BLOCK_ESCALATION": policy.escalation = try int(1...100)
        case "BLOCK_MAX_DURATION": policy.maxDuration = try seconds()
        case "OFFENSE_MEMORY": policy.offenseMemory = try seconds()
        case "STEALTH_BLOCK_DURATION": policy.stealthMaxDuration = try seconds()
        case "SESSION_GRACE": policy.sessionGrace = try seconds()
        case "PEER_MEMORY": policy.peerMemory = try seconds()
        case "FLEET_DECISION_RATE": policy.decisionRate = try int(0...1_000_000)
        case "EVENT_RETENTION": eventRetention = try seconds()
        case "CHANGE_RETENTION": changeRetention = try seconds()
        case "DECISION_RETENTION": decisionRetention = try seconds()
        case "PROTECT":
            for item in value.split(whereSeparator: { $0 == "," || $0 == " " }) {
                do { policy.protected.append(try IPPrefix(parsing: item)) } catch {
                    throw Failure(description: "\"\(item)\" is not an address or prefix")
                }
            }
        default:
            throw Failure(description: "unknown setting (see the documented controller.conf that init writes)")
        }
    }

    /// `600`, `600s`, `10m`, `1h`, `7d`, `2w` (Shared's syntax, as the sensor reads it); nil
    /// when malformed or beyond `Bounds.maxDurationSeconds`, whatever the digits.
    package static func duration(_ text: String) -> Int64? {
        try? ConfigDuration.seconds(text, max: Bounds.maxDurationSeconds)
    }

    /// The file `init` writes: every setting at its default, each explained.
    package static let documented = """
        # portsentry-controller settings. KEY = value; durations take s, m, h, d.
        # Command-line options (--listen, --port, --postgres-*) override this file.

        LISTEN = 0.0.0.0
        PORT = 8443

        # Storage: SQLite in the data directory unless POSTGRES_HOST is set; several
        # controllers can then share one PostgreSQL database.
        # POSTGRES_HOST = db.example.net
        # POSTGRES_PORT = 5432
        # POSTGRES_USER = portsentry
        # POSTGRES_DATABASE = portsentry
        # POSTGRES_PASSWORD_FILE = /etc/portsentry/pg.password
        # POSTGRES_TLS = yes              # require TLS, verified against POSTGRES_CA_FILE or the system CAs
        # POSTGRES_CA_FILE = /etc/ssl/certs/db-ca.pem
        # POSTGRES_CONNECT_TIMEOUT = 30   # seconds to reach the database at start before giving up

        # Correlation across sensors, per source address, in a sliding window.
        CORRELATION_WINDOW = 10m
        # Horizontal sweep: distinct hosts touched. A tripwire probe or a completed
        # handshake counts one host; a closed-port negative reply half; UDP a quarter.
        HORIZONTAL_HOSTS = 5
        # Vertical scan summed across hosts: distinct ports, weighted the same way.
        VERTICAL_PORTS = 20
        # Every automatic decision needs this many sensors to have seen the source: one sensor
        # alone (perhaps compromised, perhaps lied to by forged packets) never blocks anything
        # fleet-wide. A completed handshake weighs twice a tripwire probe, but does not replace
        # the quorum.
        QUORUM_SENSORS = 2
        # A source blocked locally by this many sensors is blocked fleet-wide (0 = never).
        PROMOTE_LOCAL_BLOCKS = 2
        # Distributed scan: this many sources in one prefix, together past HORIZONTAL_HOSTS,
        # block the prefix (0 = off). Prefix lengths:
        DISTRIBUTED_SOURCES = 8
        DISTRIBUTED_PREFIX_V4 = 24
        DISTRIBUTED_PREFIX_V6 = 64

        # Decisions: first block, multiplied per repeat offence within OFFENSE_MEMORY, capped.
        BLOCK_DURATION = 1h
        BLOCK_ESCALATION = 4
        BLOCK_MAX_DURATION = 7d
        OFFENSE_MEMORY = 30d

        # Stealth probes (SYN, FIN, NULL, XMAS, ACK, UDP...) can be forged from any address. A
        # decision on them alone, with no completed handshake, lasts at most this long and never
        # escalates, and is not taken at all against an address that completed real TCP
        # connections with a fleet member within PEER_MEMORY (sensors report such peers).
        STEALTH_BLOCK_DURATION = 15m
        PEER_MEMORY = 24h
        # An admin's live session on a sensor's PROTECT_PORTS protects its peer fleet-wide while
        # it lives and this long after.
        SESSION_GRACE = 1h
        # Circuit breaker: at most this many automatic decisions a minute; past it, findings
        # are refused and counted until the rate falls (0 = no limit). Operators are not limited.
        FLEET_DECISION_RATE = 60

        # Retention: stored events, block-list changes and ended decisions older than these are
        # deleted (every 10 minutes, in small batches). A sensor further behind than
        # CHANGE_RETENTION gets a snapshot. DECISION_RETENTION must cover OFFENSE_MEMORY.
        EVENT_RETENTION = 30d
        CHANGE_RETENTION = 7d
        DECISION_RETENTION = 365d

        # Never blocked fleet-wide, not even by an operator, besides the controller's own
        # addresses. What sensors report (their own addresses, gateways and resolvers on their
        # networks, ignore files, admin sessions) also stops automatic decisions, never an
        # operator's (who is told what overlaps).
        # PROTECT = 192.0.2.1, 2001:db8::/64
        """
}

/// When correlation turns events into a fleet-wide decision, and for how long.
package struct CorrelationPolicy: Equatable, Sendable {
    package var window: Int64 = 600
    package var horizontalHosts = 5
    package var verticalPorts = 20
    package var quorum = 2
    package var promoteLocalBlocks = 2
    package var distributedSources = 8
    package var distributedPrefixV4 = 24
    package var distributedPrefixV6 = 64
    package var blockDuration: Int64 = 3600
    package var escalation = 4
    package var maxDuration: Int64 = 7 * 86_400
    package var offenseMemory: Int64 = 30 * 86_400
    package var protected: [IPPrefix] = []
    /// Longest block on stealth evidence alone (never escalated).
    package var stealthMaxDuration: Int64 = 900
    /// How long an admin session's peer stays protected after it was last reported.
    package var sessionGrace: Int64 = 3600
    /// How long a sensor's established-connection peer counts as proven.
    package var peerMemory: Int64 = 86_400
    /// Automatic decisions a minute before the fleet breaker opens (0: no limit).
    package var decisionRate = 60

    package func validate(file: String) throws(ControllerConfig.Failure) {
        guard window >= 1 else { throw .init(description: "\(file): CORRELATION_WINDOW must be at least 1 s") }
        guard stealthMaxDuration >= 1 else { throw .init(description: "\(file): STEALTH_BLOCK_DURATION must be at least 1 s") }
        guard blockDuration >= 1 else { throw .init(description: "\(file): BLOCK_DURATION must be at least 1 s") }
        guard maxDuration >= blockDuration else {
            throw .init(description: "\(file): BLOCK_MAX_DURATION (\(maxDuration) s) is shorter than BLOCK_DURATION (\(blockDuration) s)")
        }
    }

    /// Duration of a block on stealth evidence alone: short, never escalated.
    package var stealthDuration: Int64 { min(duration(offense: 1), stealthMaxDuration) }

    /// Duration of the `offense`-th block (1 = first).
    package func duration(offense: Int) -> Int64 {
        var d = blockDuration
        for _ in 1..<max(offense, 1) {
            d = d.multipliedReportingOverflow(by: Int64(escalation)).partialValue
            if d >= maxDuration || d <= 0 { return maxDuration }
        }
        return min(d, maxDuration)
    }
}
