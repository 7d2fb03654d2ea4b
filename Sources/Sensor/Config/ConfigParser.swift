#if canImport(Glibc)
import Glibc
#endif

/// Reads `portsentry.conf` in the syntax of Portsentry 2.x (`KEY="value"`) and 1.2
/// (`KEY="value"` or `KEY "value"`). Every problem is fatal and names file, line and what
/// was expected; unknown keys are errors (a typo must not silently disable detection).
enum ConfigParser {
    /// Bound on the config file: far above any real one, small enough to refuse a wrong path.
    static let maxFileBytes = 1 << 20
    /// Bound on one line: Portsentry's longest real values are port lists of a few KiB.
    static let maxLineBytes = 64 << 10

    static func parse(file path: String) throws(ConfigError) -> SensorConfig {
        let text: String
        do { text = try TextFile.read(path, limit: maxFileBytes) } catch {
            throw ConfigError(file: path, line: 0, message: error.description)
        }
        return try parse(text: text, file: path)
    }

    static func parse(text: String, file: String) throws(ConfigError) -> SensorConfig {
        var config = SensorConfig()
        var seen: [String: Int] = [:]
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isLineBreak) {
            lineNumber += 1
            func fail(_ message: String) -> ConfigError { ConfigError(file: file, line: lineNumber, message: message) }
            if rawLine.utf8.count > maxLineBytes { throw fail("line longer than \(maxLineBytes) bytes") }
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }

            let (key, value) = try splitLine(line, fail: fail)
            guard let apply = keys[key] else {
                throw fail("unknown key '\(key)' (see portsentry.conf(5) in docs/configuration.md)")
            }
            if let earlier = seen[key] {
                // Portsentry's example files set a key once; a repeat is almost always an
                // uncommented alternative. Last one wins, as in 2.x, but never silently.
                Diagnostics.warn("\(file):\(lineNumber): \(key) is also set on line \(earlier); this line wins")
            }
            seen[key] = lineNumber
            do { try apply(&config, value) } catch { throw fail("\(key): \(error.description)") }
            if pathKeys.contains(key), !value.isEmpty, !value.hasPrefix("/") {
                Diagnostics.logger.notice("""
                    \(file):\(lineNumber): \(key) "\(value)" is relative: using \(StartDirectory.resolve(value)) \
                    (the directory portsentry was started in)
                    """)
            }
            if legacyKeys.contains(key) { config.looksLike12 = true }
        }
        if seen["HISTORY_FORMAT"] == nil, config.looksLike12 { config.historyFormat = .portsentry12 }
        try validate(config, seen: seen, file: file)
        return config
    }

    private static func splitLine(_ line: String, fail: (String) -> ConfigError) throws(ConfigError) -> (String, String) {
        guard let keyEnd = line.firstIndex(where: { !($0.isUppercase || $0.isNumber || $0 == "_") || !$0.isASCII }),
              keyEnd != line.startIndex else {
            throw fail("expected KEY=\"value\", got '\(line.prefix(60))'")
        }
        let key = String(line[..<keyEnd])
        var rest = Substring(line[keyEnd...])
        while let c = rest.first, c == " " || c == "\t" { rest.removeFirst() }
        if rest.first == "=" { rest.removeFirst() } else if rest.count == line[keyEnd...].count {
            throw fail("expected '=' after \(key)")
        }
        while let c = rest.first, c == " " || c == "\t" { rest.removeFirst() }
        if rest.first == "\"" {
            rest.removeFirst()
            guard let close = rest.firstIndex(of: "\"") else { throw fail("\(key): missing closing quote") }
            let value = String(rest[..<close])
            let trailer = rest[rest.index(after: close)...].trimmingWhitespace()
            guard trailer.isEmpty || trailer.hasPrefix("#") else {
                throw fail("\(key): unexpected text after the closing quote: '\(trailer.prefix(40))'")
            }
            return (key, value)
        }
        // Portsentry refuses unquoted values. A single word (`BLOCK_TCP=1`) can only mean
        // one thing and is accepted; anything with spaces, quotes or `#` inside could be
        // cut in the wrong place, so it must be quoted.
        var bare = Substring(rest)
        if let comment = bare.firstRange(of: " #") ?? bare.firstRange(of: "\t#") { bare = bare[..<comment.lowerBound] }
        if bare.hasPrefix("#") { bare = "" }
        let value = bare.trimmingWhitespace()
        if value.contains(where: { $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "#" }) {
            throw fail("\(key): a value with spaces, quotes or '#' must be in double quotes: \(key)=\"\(value.prefix(60))\"")
        }
        return (key, value)
    }

    private typealias Apply = @Sendable (inout SensorConfig, String) throws(ConfigProblem) -> Void

    /// Keys whose value is a file or directory (relative ones are resolved by `path`).
    private static let pathKeys: Set<String> = [
        "IGNORE_FILE", "HISTORY_FILE", "BLOCKED_FILE", "JSON_LOG_FILE", "STATE_DIR", "CONTROL_SOCKET",
        "ALERT_SMTP_PASSWORD_FILE", "ALERT_CA_FILE", "HOSTS_DENY_FILE",
    ]

    /// Keys only Portsentry 1.2 reads.
    private static let legacyKeys: Set<String> = [
        "ADVANCED_PORTS_TCP", "ADVANCED_PORTS_UDP", "ADVANCED_EXCLUDE_TCP", "ADVANCED_EXCLUDE_UDP",
    ]

    private static let keys: [String: Apply] = [
        "TCP_PORTS": { c, v throws(ConfigProblem) in c.tcpPorts = try PortListParser.parse(v) },
        "UDP_PORTS": { c, v throws(ConfigProblem) in c.udpPorts = try PortListParser.parse(v) },
        "ADVANCED_PORTS_TCP": { c, v throws(ConfigProblem) in c.advancedPortsTCP = UInt16(try int(v, 1...65535)) },
        "ADVANCED_PORTS_UDP": { c, v throws(ConfigProblem) in c.advancedPortsUDP = UInt16(try int(v, 1...65535)) },
        "ADVANCED_EXCLUDE_TCP": { c, v throws(ConfigProblem) in c.advancedExcludeTCP = try PortListParser.parse(v) },
        "ADVANCED_EXCLUDE_UDP": { c, v throws(ConfigProblem) in c.advancedExcludeUDP = try PortListParser.parse(v) },
        "IGNORE_FILE": { c, v throws(ConfigProblem) in c.ignoreFile = try path(v) },
        "HISTORY_FILE": { c, v throws(ConfigProblem) in c.historyFile = try path(v) },
        "BLOCKED_FILE": { c, v throws(ConfigProblem) in c.blockedFile = try path(v) },
        "RESOLVE_HOST": { c, v throws(ConfigProblem) in c.resolveHost = try bool(v) },
        "BLOCK_TCP": { c, v throws(ConfigProblem) in c.blockTCP = try blockMode(v) },
        "BLOCK_UDP": { c, v throws(ConfigProblem) in c.blockUDP = try blockMode(v) },
        "KILL_ROUTE": { c, v throws(ConfigProblem) in c.killRoute = try command(v, needsTarget: true) },
        "KILL_HOSTS_DENY": { c, v throws(ConfigProblem) in c.killHostsDeny = try command(v, needsTarget: true) },
        "KILL_RUN_CMD": { c, v throws(ConfigProblem) in c.killRunCmd = try command(v, needsTarget: false) },
        "KILL_RUN_CMD_FIRST": { c, v throws(ConfigProblem) in c.killRunCmdFirst = try bool(v) },
        "SCAN_TRIGGER": { c, v throws(ConfigProblem) in c.scanTrigger = try int(v, 0...1_000_000) },
        "PORT_BANNER": { c, v throws(ConfigProblem) in c.portBanner = v.isEmpty ? nil : v },
        "SCAN_TRIGGER_WINDOW": { c, v throws(ConfigProblem) in c.scanTriggerWindow = try duration(v, 1...(365 * 86_400)) },
        "HISTORY_FORMAT": { c, v throws(ConfigProblem) in
            guard let f = SensorConfig.HistoryFormat(rawValue: v) else {
                throw ConfigProblem("expected \"2\" (Portsentry 2.x lines) or \"1.2\" (1.2 lines, fail2ban's stock filter), got '\(v)'")
            }
            c.historyFormat = f
        },
        "JSON_LOG_FILE": { c, v throws(ConfigProblem) in c.jsonLogFile = try path(v) },
        "CLOSED_PORT_DETECTION": { c, v throws(ConfigProblem) in c.closedPortDetection = try bool(v) },
        "CLOSED_PORT_THRESHOLD": { c, v throws(ConfigProblem) in c.closedPortThreshold = try int(v, 1...100_000) },
        "CLOSED_PORT_MAX_GAP": { c, v throws(ConfigProblem) in c.closedPortMaxGap = try duration(v, 1...3600) },
        "CLOSED_PORT_WEIGHT_PRIVILEGED": { c, v throws(ConfigProblem) in c.closedPortWeightPrivileged = try int(v, 0...1000) },
        "CLOSED_PORT_WEIGHT_HIGH": { c, v throws(ConfigProblem) in c.closedPortWeightHigh = try int(v, 0...1000) },
        "STATE_TABLE_SIZE": { c, v throws(ConfigProblem) in c.stateTableSize = try int(v, 256...(16 << 20)) },
        "LOG_RATE": { c, v throws(ConfigProblem) in c.logRate = try int(v, 1...1_000_000) },
        "LOG_BURST": { c, v throws(ConfigProblem) in c.logBurst = try int(v, 1...10_000_000) },
        "LOG_PER_SOURCE": { c, v throws(ConfigProblem) in c.logPerSource = try int(v, 0...10_000_000) },
        "CAPTURE_BUFFER_MB": { c, v throws(ConfigProblem) in c.captureBufferMB = try int(v, 1...2048) },
        "FIREWALL": { c, v throws(ConfigProblem) in
            guard let f = SensorConfig.FirewallChoice(rawValue: v) else {
                throw ConfigProblem("expected auto, nftables, iptables or none, got '\(v)'")
            }
            c.firewall = f
        },
        "BLOCK_DURATION": { c, v throws(ConfigProblem) in
            c.blockPolicy.baseSeconds = v == "permanent" || v == "0" ? nil : try duration(v, 1...(10 * 365 * 86_400))
        },
        "BLOCK_ESCALATION": { c, v throws(ConfigProblem) in c.blockPolicy.factor = Int64(try int(v, 1...100)) },
        "BLOCK_MAX_DURATION": { c, v throws(ConfigProblem) in c.blockPolicy.maxSeconds = try duration(v, 1...(10 * 365 * 86_400)) },
        "BLOCK_OFFENSE_MEMORY": { c, v throws(ConfigProblem) in c.blockPolicy.memorySeconds = try duration(v, 1...(10 * 365 * 86_400)) },
        "BLOCK_RATE_LIMIT": { c, v throws(ConfigProblem) in
            let parts = v.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ConfigProblem("expected N/DURATION such as 30/60s, got '\(v)'") }
            c.blockRateLimit = try int(parts[0], 1...1_000_000)
            c.blockRateWindow = try duration(parts[1], 1...86_400)
        },
        "DRY_RUN": { c, v throws(ConfigProblem) in c.dryRun = try bool(v) },
        "STATE_DIR": { c, v throws(ConfigProblem) in
            guard let p = try path(v) else { throw ConfigProblem("STATE_DIR cannot be empty") }
            c.stateDir = p
        },
        "PROTECT_PORTS": { c, v throws(ConfigProblem) in c.protectPorts = try PortListParser.parse(v) },
        "PROTECT_GATEWAYS": { c, v throws(ConfigProblem) in c.protectGateways = try bool(v) },
        "PROTECT_RESOLVERS": { c, v throws(ConfigProblem) in c.protectResolvers = try bool(v) },
        "KILL_TIMEOUT": { c, v throws(ConfigProblem) in c.killTimeout = try duration(v, 1...600) },
        "CONTROL_SOCKET": { c, v throws(ConfigProblem) in
            guard let p = try path(v) else { throw ConfigProblem("CONTROL_SOCKET cannot be empty") }
            c.controlSocket = p
        },
        "ALERT_EMAIL": { c, v throws(ConfigProblem) in
            var list: [String] = []
            for item in v.split(separator: ",") { list.append(try mailbox(String(item))) }
            c.alerts.emailTo = list
        },
        "ALERT_EMAIL_FROM": { c, v throws(ConfigProblem) in c.alerts.emailFrom = v.isEmpty ? nil : try mailbox(v) },
        "ALERT_SMTP_URL": { c, v throws(ConfigProblem) in c.alerts.smtpURL = try url(v, schemes: ["smtp://", "smtps://"]) },
        "ALERT_SMTP_USER": { c, v throws(ConfigProblem) in c.alerts.smtpUser = v.isEmpty ? nil : v },
        "ALERT_SMTP_PASSWORD_FILE": { c, v throws(ConfigProblem) in c.alerts.smtpPasswordFile = try path(v) },
        "ALERT_SMTP_STARTTLS": { c, v throws(ConfigProblem) in c.alerts.smtpRequireTLS = try bool(v) },
        "ALERT_CA_FILE": { c, v throws(ConfigProblem) in c.alerts.caFile = try path(v) },
        "ALERT_WEBHOOK_URL": { c, v throws(ConfigProblem) in
            c.alerts.webhookURL = v.isEmpty ? nil : try url(v, schemes: ["http://", "https://"])
        },
        "ALERT_INTERVAL": { c, v throws(ConfigProblem) in c.alerts.interval = try duration(v, 1...86_400) },
        "ALERT_GATHER": { c, v throws(ConfigProblem) in c.alerts.gather = try duration(v, 1...3600) },
        "SPOOL_MAX_MB": { c, v throws(ConfigProblem) in c.spoolMaxMB = try int(v, 1...65_536) },
        "FLEET_STALE_AFTER": { c, v throws(ConfigProblem) in c.fleetStaleAfter = try duration(v, 30...86_400) },
        "HOSTS_DENY_FILE": { c, v throws(ConfigProblem) in
            guard let p = try path(v) else { throw ConfigProblem("HOSTS_DENY_FILE cannot be empty") }
            c.hostsDenyFile = p
        },
    ]

    private static func validate(_ c: SensorConfig, seen: [String: Int], file: String) throws(ConfigError) {
        func fail(_ key: String, _ message: String) -> ConfigError {
            ConfigError(file: file, line: seen[key] ?? 0, message: "\(key): \(message)")
        }
        for (key, mode) in [("BLOCK_TCP", c.blockTCP), ("BLOCK_UDP", c.blockUDP)] {
            if mode == .block, c.killRoute == nil, c.killHostsDeny == nil, c.nativeFirewall == .none {
                throw fail(key, "\"1\" (block) needs a firewall (FIREWALL), KILL_ROUTE or KILL_HOSTS_DENY to say how to block")
            }
            if mode == .runCommandOnly, c.killRunCmd == nil {
                throw fail(key, "\"2\" (run command only) needs KILL_RUN_CMD")
            }
        }
        if c.closedPortDetection, c.closedPortWeightPrivileged == 0, c.closedPortWeightHigh == 0 {
            throw fail("CLOSED_PORT_WEIGHT_HIGH", "both port weights are 0, so closed-port scans could never be scored")
        }
    }

    // MARK: value parsers

    private static func int(_ v: String, _ range: ClosedRange<Int>) throws(ConfigProblem) -> Int {
        guard !v.isEmpty, v.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(v), range.contains(n) else {
            throw ConfigProblem("expected a whole number in \(range.lowerBound)...\(range.upperBound), got '\(v)'")
        }
        return n
    }

    private static func bool(_ v: String) throws(ConfigProblem) -> Bool {
        switch v {
        case "0": return false
        case "1": return true
        default: throw ConfigProblem("expected \"0\" or \"1\", got '\(v)'")
        }
    }

    private static func blockMode(_ v: String) throws(ConfigProblem) -> SensorConfig.BlockMode {
        guard let n = Int(v), let m = SensorConfig.BlockMode(rawValue: n) else {
            throw ConfigProblem("expected \"0\" (log only), \"1\" (block) or \"2\" (run KILL_RUN_CMD only), got '\(v)'")
        }
        return m
    }

    private static func duration(_ v: String, _ range: ClosedRange<Int64>) throws(ConfigProblem) -> Int64 {
        let s = try DurationParser.seconds(v)
        guard range.contains(s) else {
            throw ConfigProblem("duration '\(v)' must be between \(range.lowerBound) and \(range.upperBound) seconds")
        }
        return s
    }

    /// Empty means unset (2.0.7 rejects `BLOCKED_FILE=""` although its docs allow it). A
    /// relative path is resolved against the directory portsentry was started in, as
    /// Portsentry does; the result is absolute, so nothing depends on a later chdir.
    private static func path(_ v: String) throws(ConfigProblem) -> String? {
        if v.isEmpty { return nil }
        guard !v.contains("\0") else { throw ConfigProblem("path contains a NUL byte") }
        guard v.utf8.count <= Int(PATH_MAX) else { throw ConfigProblem("path longer than \(PATH_MAX) bytes") }
        return StartDirectory.resolve(v)
    }

    /// An e-mail address that cannot smuggle a header into the message.
    private static func mailbox(_ raw: String) throws(ConfigProblem) -> String {
        let v = raw.trimmingWhitespace()
        guard v.contains("@"), !v.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "<" || $0 == ">" || $0 == " " || $0 == "," }) else {
            throw ConfigProblem("'\(v)' is not an e-mail address")
        }
        return v
    }

    private static func url(_ v: String, schemes: [String]) throws(ConfigProblem) -> String {
        guard schemes.contains(where: { v.lowercased().hasPrefix($0) }), v.count > 8, !v.contains(where: \.isWhitespace) else {
            throw ConfigProblem("expected a URL starting with \(schemes.joined(separator: " or ")), got '\(v)'")
        }
        return v
    }

    private static func command(_ v: String, needsTarget: Bool) throws(ConfigProblem) -> String? {
        if v.isEmpty { return nil }
        if needsTarget, !v.contains("$TARGET$") {
            throw ConfigProblem("must contain $TARGET$ (the address to act on), got '\(v)'")
        }
        return v
    }
}
