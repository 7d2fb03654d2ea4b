import Synchronization

/// Counters for /metrics, in the Prometheus text format: batches and events accepted, and
/// every refusal by reason.
final class IngestMetrics: Sendable {
    private let counters = Mutex<[String: Int]>([:])

    func add(_ name: String, _ n: Int = 1) {
        counters.withLock { $0[name, default: 0] += n }
    }

    func value(_ name: String) -> Int { counters.withLock { $0[name] ?? 0 } }

    var prometheusText: String {
        let snapshot = counters.withLock { $0 }
        var lines = [
            "# HELP portsentry_controller_batches_accepted_total Signed batches stored.",
            "# TYPE portsentry_controller_batches_accepted_total counter",
            "portsentry_controller_batches_accepted_total \(snapshot["accepted"] ?? 0)",
            "# HELP portsentry_controller_events_accepted_total Events stored.",
            "# TYPE portsentry_controller_events_accepted_total counter",
            "portsentry_controller_events_accepted_total \(snapshot["events"] ?? 0)",
            "# HELP portsentry_controller_batches_duplicate_total Retried batches answered without storing.",
            "# TYPE portsentry_controller_batches_duplicate_total counter",
            "portsentry_controller_batches_duplicate_total \(snapshot["duplicate"] ?? 0)",
            "# HELP portsentry_controller_batches_refused_total Refused batches by reason.",
            "# TYPE portsentry_controller_batches_refused_total counter",
        ]
        for reason in ["malformed", "oversized", "unknown_sensor", "revoked", "bad_signature", "stale", "replayed", "internal"] {
            lines.append("portsentry_controller_batches_refused_total{reason=\"\(reason)\"} \(snapshot["refused_" + reason] ?? 0)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
