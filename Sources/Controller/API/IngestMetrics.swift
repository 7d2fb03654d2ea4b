import Synchronization

/// Counters for /metrics, in the Prometheus text format: batches, events and heartbeats
/// accepted, and every refusal (batch, heartbeat, poll, enrollment, operator) by reason.
final class IngestMetrics: Sendable {
    private let counters = Mutex<[String: Int]>([:])
    /// Every reason a signed request can be refused for (each is exported, zero or not).
    static let reasons = ["malformed", "oversized", "unknown_sensor", "revoked", "bad_signature", "stale", "replayed", "internal"]

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
        for reason in Self.reasons {
            lines.append("portsentry_controller_batches_refused_total{reason=\"\(reason)\"} \(snapshot["refused_" + reason] ?? 0)")
        }
        lines += [
            "# HELP portsentry_controller_heartbeats_total Signed heartbeats stored.",
            "# TYPE portsentry_controller_heartbeats_total counter",
            "portsentry_controller_heartbeats_total \(snapshot["heartbeats"] ?? 0)",
        ]
        for (request, help) in [("heartbeat", "Refused heartbeats by reason."), ("poll", "Refused block-list polls by reason.")] {
            lines += ["# HELP portsentry_controller_\(request)s_refused_total \(help)",
                      "# TYPE portsentry_controller_\(request)s_refused_total counter"]
            for reason in Self.reasons {
                lines.append("portsentry_controller_\(request)s_refused_total{reason=\"\(reason)\"} \(snapshot["\(request)_refused_" + reason] ?? 0)")
            }
        }
        lines += [
            "# HELP portsentry_controller_enrollments_refused_total Enrollments refused (unknown, used or expired token; name taken).",
            "# TYPE portsentry_controller_enrollments_refused_total counter",
            "portsentry_controller_enrollments_refused_total \(snapshot["enroll_refused"] ?? 0)",
            "# HELP portsentry_controller_operator_refused_total Operator API requests refused for a missing or wrong token.",
            "# TYPE portsentry_controller_operator_refused_total counter",
            "portsentry_controller_operator_refused_total \(snapshot["refused_operator"] ?? 0)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
