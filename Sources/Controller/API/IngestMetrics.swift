import Prometheus

/// Counters of what arrives over HTTP: batches, events and heartbeats accepted, and every
/// refusal (batch, heartbeat, poll, enrollment, operator) by reason. Registered in the
/// controller's one Prometheus registry (swift-prometheus), which `/metrics` emits.
final class IngestMetrics: Sendable {
    let counters: NamedCounters
    /// Every reason a signed request can be refused for (each is exported, zero or not).
    static let reasons = ["malformed", "oversized", "unknown_sensor", "revoked", "bad_signature", "stale", "replayed", "internal"]

    /// `registry`: the service's one registry (`FleetMetrics.registry`); a test may leave it out.
    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        var c = NamedCounters.Builder(registry: registry)
        c.add("accepted", "batches_accepted_total", "Signed batches stored.")
        c.add("events", "events_accepted_total", "Events stored.")
        c.add("duplicate", "batches_duplicate_total", "Retried batches answered without storing.")
        c.add("heartbeats", "heartbeats_total", "Signed heartbeats stored.")
        c.add("enroll_refused", "enrollments_refused_total", "Enrollments refused (unknown, used or expired token; name taken).")
        c.add("refused_operator", "operator_refused_total", "Operator API requests refused for a missing or wrong token.")
        for reason in Self.reasons {
            c.add("refused_" + reason, "batches_refused_total", "Refused batches by reason.", reason: reason)
            c.add("heartbeat_refused_" + reason, "heartbeats_refused_total", "Refused heartbeats by reason.", reason: reason)
            c.add("poll_refused_" + reason, "polls_refused_total", "Refused block-list polls by reason.", reason: reason)
        }
        counters = c.done()
    }

    var registry: PrometheusCollectorRegistry { counters.registry }
    func add(_ name: String, _ n: Int = 1) { counters.add(name, n) }
    func value(_ name: String) -> Int { counters.value(name) }
}

/// Counters known by a short key (`refused_stale`), each a Prometheus counter with a name,
/// help text and at most a `reason`-like label, all registered up front so every series is
/// exported from the start, zero or not.
struct NamedCounters: Sendable {
    let registry: PrometheusCollectorRegistry
    private let counters: [String: (counter: Counter, sample: String)]

    struct Builder {
        let registry: PrometheusCollectorRegistry
        private var counters: [String: (counter: Counter, sample: String)] = [:]

        init(registry: PrometheusCollectorRegistry) { self.registry = registry }

        mutating func add(_ key: String, _ name: String, _ help: String, reason: String? = nil, label: String = "reason") {
            let descriptor = Metric.named(name, help)
            let labels = reason.map { [(label, $0)] } ?? []
            let sample = descriptor.name + (reason.map { "{\(label)=\"\($0)\"}" } ?? "")
            counters[key] = (registry.makeCounter(descriptor: descriptor, labels: labels), sample)
        }

        func done() -> NamedCounters { NamedCounters(registry: registry, counters: counters) }
    }

    private init(registry: PrometheusCollectorRegistry, counters: [String: (counter: Counter, sample: String)]) {
        self.registry = registry
        self.counters = counters
    }

    func add(_ key: String, _ n: Int = 1) {
        guard let entry = counters[key] else {
            // Every key used is registered where the counters are built; one without is a bug.
            assertionFailure("metric \(key) is not registered")
            return
        }
        entry.counter.increment(by: Int64(n))
    }

    /// A counter's value as a scraper reads it (swift-prometheus keeps values write-only).
    func value(_ key: String) -> Int {
        guard let sample = counters[key]?.sample else { return 0 }
        for line in registry.emitToString().split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Int(line.dropFirst(sample.count + 1)) ?? 0
        }
        return 0
    }
}

/// Every metric is named `portsentry_controller_<name>` and has a help text.
enum Metric {
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "portsentry", subsystem: "controller", metricName: name, unitName: "", helpText: help)
    }
}
