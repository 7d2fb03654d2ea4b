import Synchronization
import ControllerCore

/// Distribution metrics for /metrics: time from a decision to its revision being applied on
/// each sensor (a histogram), each sensor's revision lag, drift resynchronisations, and
/// decisions made or refused.
final class FleetMetrics: Sendable {
    /// Histogram bounds in seconds: the target is p99 under 0.25 s.
    static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct State {
        var buckets = [Int](repeating: 0, count: FleetMetrics.bounds.count)
        var count = 0
        var sum = 0.0
        var samples: [Double] = []
        var lag: [String: Int64] = [:]
        var counters: [String: Int] = [:]
    }
    private let state = Mutex(State())
    /// Recent time-to-enforce samples kept for percentiles (`/v1/fleet`).
    static let maxSamples = 10_000

    func observeEnforcement(seconds: Double) {
        state.withLock { s in
            for (i, b) in Self.bounds.enumerated() where seconds <= b { s.buckets[i] += 1 }
            s.count += 1
            s.sum += seconds
            if s.samples.count >= Self.maxSamples { s.samples.removeFirst(s.samples.count / 2) }
            s.samples.append(seconds)
        }
    }

    func setLag(sensor: String, revisions: Int64) { state.withLock { $0.lag[sensor] = revisions } }
    func add(_ name: String, _ n: Int = 1) { state.withLock { $0.counters[name, default: 0] += n } }
    func value(_ name: String) -> Int { state.withLock { $0.counters[name] ?? 0 } }

    /// Time-to-enforce samples so far (seconds).
    var samples: [Double] { state.withLock { $0.samples } }

    var prometheusText: String {
        let s = state.withLock { $0 }
        var lines = [
            "# HELP portsentry_controller_time_to_enforce_seconds Decision to block-list revision applied, per sensor.",
            "# TYPE portsentry_controller_time_to_enforce_seconds histogram",
        ]
        for (i, b) in Self.bounds.enumerated() {
            lines.append("portsentry_controller_time_to_enforce_seconds_bucket{le=\"\(b)\"} \(s.buckets[i])")
        }
        lines += [
            "portsentry_controller_time_to_enforce_seconds_bucket{le=\"+Inf\"} \(s.count)",
            "portsentry_controller_time_to_enforce_seconds_sum \(s.sum)",
            "portsentry_controller_time_to_enforce_seconds_count \(s.count)",
            "# HELP portsentry_controller_sensor_revision_lag Revisions a sensor is behind the current block list.",
            "# TYPE portsentry_controller_sensor_revision_lag gauge",
        ]
        for (sensor, lag) in s.lag.sorted(by: { $0.key < $1.key }) {
            lines.append("portsentry_controller_sensor_revision_lag{sensor=\"\(sensor)\"} \(lag)")
        }
        lines += [
            "# HELP portsentry_controller_blocklist_resyncs_total Snapshots sent because a sensor's kernel differed from the list.",
            "# TYPE portsentry_controller_blocklist_resyncs_total counter",
            "portsentry_controller_blocklist_resyncs_total \(s.counters["resync"] ?? 0)",
            "# HELP portsentry_controller_decisions_total Fleet-wide decisions by origin.",
            "# TYPE portsentry_controller_decisions_total counter",
        ]
        for origin in DecisionRecord.Origin.allCases {
            lines.append("portsentry_controller_decisions_total{origin=\"\(origin.rawValue)\"} \(s.counters["decided_" + origin.rawValue] ?? 0)")
        }
        lines += [
            "# HELP portsentry_controller_decisions_refused_total Findings not acted on, by reason.",
            "# TYPE portsentry_controller_decisions_refused_total counter",
        ]
        for reason in ["protected", "allowlisted", "known_peer", "breaker"] {
            lines.append("portsentry_controller_decisions_refused_total{reason=\"\(reason)\"} \(s.counters["refused_" + reason] ?? 0)")
        }
        lines += [
            "# HELP portsentry_controller_events_foreign_destination_total Events a sensor reported about addresses not its own (stored, never correlated).",
            "# TYPE portsentry_controller_events_foreign_destination_total counter",
            "portsentry_controller_events_foreign_destination_total \(s.counters["foreign_destination"] ?? 0)",
            "# HELP portsentry_controller_decisions_lifted_protected_total Automatic decisions lifted because an address they cover became protected.",
            "# TYPE portsentry_controller_decisions_lifted_protected_total counter",
            "portsentry_controller_decisions_lifted_protected_total \(s.counters["lifted_protected"] ?? 0)",
            "# HELP portsentry_controller_pruned_total Rows deleted by retention, by kind.",
            "# TYPE portsentry_controller_pruned_total counter",
            "portsentry_controller_pruned_total{kind=\"events\"} \(s.counters["pruned_events"] ?? 0)",
            "portsentry_controller_pruned_total{kind=\"changes\"} \(s.counters["pruned_changes"] ?? 0)",
            "portsentry_controller_pruned_total{kind=\"decisions\"} \(s.counters["pruned_decisions"] ?? 0)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
