/// The detector's tunables, derived from the config and the run mode.
package struct DetectionSettings: Sendable, Equatable {
    package var tripwireTCP = PortSet()
    package var tripwireUDP = PortSet()
    /// Portsentry semantics: 0 and 1 act on the first hit, N on the Nth.
    package var scanTrigger = 0
    package var triggerWindow: Int64 = 300 * nanosPerSecond
    package var closedPortDetection = true
    package var closedPortThreshold = 21
    package var closedPortMaxGap: Int64 = 3 * nanosPerSecond
    package var weightPrivileged = 3
    package var weightHigh = 1
    package var tableCapacity = 65_536
    /// Per-source event numbering restarts after this long (the output limiter's window).
    package var logWindow: Int64 = 3600 * nanosPerSecond

    package init() {}

    /// How long an idle source is worth remembering.
    package var entryLifetime: Int64 { max(triggerWindow, closedPortMaxGap, logWindow) }
}

package let nanosPerSecond: Int64 = 1_000_000_000
