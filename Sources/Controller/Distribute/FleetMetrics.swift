import Prometheus
import Synchronization
import ControllerCore

/// Distribution metrics: time from a decision to its revision being applied on each sensor
/// (a histogram), each sensor's revision lag, drift resynchronisations, decisions made or
/// refused, and retention. Registered in the controller's Prometheus registry.
final class FleetMetrics: Sendable {
    /// Histogram bounds in seconds: the target is p99 under 0.25 s.
    static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Recent time-to-enforce samples kept for percentiles (`/v1/fleet`).
    static let maxSamples = 10_000

    let registry: PrometheusCollectorRegistry
    private let counters: NamedCounters
    private let enforcement: ValueHistogram
    private let recent = Mutex<[Double]>([])

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        enforcement = registry.makeValueHistogram(
            descriptor: Metric.named("time_to_enforce_seconds", "Decision to block-list revision applied, per sensor."), buckets: Self.bounds)
        var c = NamedCounters.Builder(registry: registry)
        c.add("resync", "blocklist_resyncs_total", "Snapshots sent because a sensor's kernel differed from the list.")
        for origin in DecisionRecord.Origin.allCases {
            c.add("decided_" + origin.rawValue, "decisions_total", "Fleet-wide decisions by origin.", reason: origin.rawValue, label: "origin")
        }
        for reason in ["protected", "allowlisted", "known_peer", "breaker"] {
            c.add("refused_" + reason, "decisions_refused_total", "Findings not acted on, by reason.", reason: reason)
        }
        c.add("foreign_destination", "events_foreign_destination_total",
              "Events a sensor reported about addresses not its own (stored, never correlated).")
        c.add("lifted_protected", "decisions_lifted_protected_total",
              "Automatic decisions lifted because an address they cover became protected.")
        for kind in ["events", "changes", "decisions"] {
            c.add("pruned_" + kind, "pruned_total", "Rows deleted by retention, by kind.", reason: kind, label: "kind")
        }
        counters = c.done()
    }

    func observeEnforcement(seconds: Double) {
        enforcement.record(seconds)
        recent.withLock { s in
            if s.count >= Self.maxSamples { s.removeFirst(s.count / 2) }
            s.append(seconds)
        }
    }

    func setLag(sensor: String, revisions: Int64) {
        registry.makeGauge(descriptor: Metric.named("sensor_revision_lag", "Revisions a sensor is behind the current block list."),
                           labels: [("sensor", MetricLabel.clean(sensor))]).set(revisions)
    }

    func add(_ name: String, _ n: Int = 1) { counters.add(name, n) }
    func value(_ name: String) -> Int { counters.value(name) }

    /// Time-to-enforce samples so far (seconds).
    var samples: [Double] { recent.withLock { $0 } }
}

/// Label values come from sensor names: kept printable and without the quote and backslash
/// that would break the exposition format.
enum MetricLabel {
    static func clean(_ value: String) -> String {
        String(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }.prefix(64))
    }
}
