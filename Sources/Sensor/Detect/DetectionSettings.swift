/// The detector's tunables, derived from the config and the run mode.
struct DetectionSettings: Sendable, Equatable {
    var tripwireTCP = PortSet()
    var tripwireUDP = PortSet()
    /// Portsentry semantics: 0 and 1 act on the first hit, N on the Nth.
    var scanTrigger = 0
    var triggerWindow: Int64 = 300 * nanosPerSecond
    var closedPortDetection = true
    var closedPortThreshold = 21
    var closedPortMaxGap: Int64 = 3 * nanosPerSecond
    var weightPrivileged = 3
    var weightHigh = 1
    var tableCapacity = 65_536
    /// Per-source event numbering restarts after this long (the output limiter's window).
    var logWindow: Int64 = 3600 * nanosPerSecond

    init() {}

    /// How long an idle source is worth remembering.
    var entryLifetime: Int64 { max(triggerWindow, closedPortMaxGap, logWindow) }
}

let nanosPerSecond: Int64 = 1_000_000_000
