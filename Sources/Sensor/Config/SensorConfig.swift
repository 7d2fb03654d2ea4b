import SensorCore

/// Everything `portsentry.conf` can say, validated. Built only by `ConfigParser`, so a
/// value of this type is always complete and consistent: nothing starts half-configured.
struct SensorConfig: Sendable, Equatable {
    // Portsentry 2.x and 1.2 keys.
    var tcpPorts = PortSet()
    var udpPorts = PortSet()
    var advancedPortsTCP: UInt16 = 1024
    var advancedPortsUDP: UInt16 = 1024
    var advancedExcludeTCP = PortSet([113...113, 139...139])
    var advancedExcludeUDP = PortSet([67...67, 137...138, 520...520])
    var ignoreFile: String? = nil
    var historyFile: String? = nil
    var blockedFile: String? = nil
    var resolveHost = false
    var blockTCP: BlockMode = .logOnly
    var blockUDP: BlockMode = .logOnly
    var killRoute: String? = nil
    var killHostsDeny: String? = nil
    var killRunCmd: String? = nil
    var killRunCmdFirst = false
    var scanTrigger = 0
    var portBanner: String? = nil

    // Keys of our own (Portsentry has none of these).
    /// SCAN_TRIGGER counts hits inside this window; a count that never decays would turn
    /// a year of background noise into a block.
    var scanTriggerWindow: Int64 = 300
    var historyFormat: HistoryFormat = .portsentry2
    var jsonLogFile: String? = nil
    var closedPortDetection = true
    var closedPortThreshold = 21
    var closedPortMaxGap: Int64 = 3
    var closedPortWeightPrivileged = 3
    var closedPortWeightHigh = 1
    var stateTableSize = 65_536
    var logRate = 20
    var logBurst = 200
    var logPerSource = 50
    var captureBufferMB = 32

    // Blocking (keys of our own).
    var firewall: FirewallChoice = .auto
    var blockPolicy = BlockPolicy()
    /// Circuit breaker: at most this many new blocks per window.
    var blockRateLimit = 30
    var blockRateWindow: Int64 = 60
    var dryRun = false
    var stateDir = "/var/lib/portsentry"
    /// Peers of established sessions on these local ports are never blocked (SSH by default).
    var protectPorts = PortSet([22...22])
    var protectGateways = true
    var protectResolvers = true
    var killTimeout: Int64 = 10
    var controlSocket = "/run/portsentry/control.sock"
    var alerts = AlertSettings()
    /// Bound on the controller spool (events waiting while the controller is unreachable).
    var spoolMaxMB = 64
    /// Seconds without a fresh signed answer from the controller before the sensor says its
    /// fleet list may be stale (withheld updates).
    var fleetStaleAfter: Int64 = 120

    /// Where KILL_HOSTS_DENY lines go (Portsentry's compile-time WRAPPER_HOSTS_DENY).
    var hostsDenyFile = "/etc/hosts.deny"

    enum FirewallChoice: String, Sendable, Equatable {
        /// nftables, unless the file says how to block the Portsentry way (KILL_ROUTE or
        /// KILL_HOSTS_DENY): a Portsentry configuration gets Portsentry's behaviour.
        case auto, nftables, iptables, none
    }

    /// The native backend in force for BLOCK_*="1", if any. KILL_RUN_CMD alone does not
    /// count as a way to block (Portsentry refuses BLOCK_*="1" with only KILL_RUN_CMD); it
    /// runs alongside the native block.
    var nativeFirewall: FirewallChoice {
        switch firewall {
        case .auto: return killRoute == nil && killHostsDeny == nil ? .nftables : .none
        default: return firewall
        }
    }

    /// True when BLOCK_*="1" runs Portsentry's own actions (KILL_HOSTS_DENY, KILL_ROUTE, KILL_RUN_CMD).
    var hasKillActions: Bool { killRoute != nil || killHostsDeny != nil || killRunCmd != nil }

    /// True when the file used keys only Portsentry 1.2 knows (its history format is then the default).
    var looksLike12 = false

    enum BlockMode: Int, Sendable, Equatable {
        case logOnly = 0, block = 1, runCommandOnly = 2
    }

    enum HistoryFormat: String, Sendable, Equatable {
        /// `2026-11-25T01:43:06.802+0000 Scan from: [...]`: Portsentry 2.x, its fail2ban filter.
        case portsentry2 = "2"
        /// `1403884279 - 06/27/2014 17:51:19 Host: ip/ip Port: 1 TCP Blocked`: 1.2, fail2ban's stock filter.
        case portsentry12 = "1.2"
    }

    init() {}
}

/// A config error with its place: `portsentry.conf:12: SCAN_TRIGGER: 'x' is not ...`.
struct ConfigError: Error, CustomStringConvertible, Equatable {
    let file: String
    let line: Int
    let message: String

    var description: String {
        line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)"
    }
}
