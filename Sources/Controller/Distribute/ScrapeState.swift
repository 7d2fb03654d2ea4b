import Prometheus
import PortsentryShared
import Synchronization

/// The part of `/metrics` read from live state at scrape time: totals kept by other
/// components (advanced into Prometheus counters by their growth) and the per-sensor gauges
/// from heartbeats (removed when a sensor is revoked or deleted).
final class ScrapeState: Sendable {
    private struct State {
        var totals: [String: Int] = [:]
        var sensors: Set<String> = []
    }
    private let state = Mutex(State())

    func advance(_ name: String, _ help: String, to total: Int, in registry: PrometheusCollectorRegistry) {
        let counter = registry.makeCounter(descriptor: Metric.named(name, help))
        let grown = state.withLock { s -> Int in
            defer { s.totals[name] = total }
            return max(0, total - (s.totals[name] ?? 0))
        }
        if grown > 0 { counter.increment(by: Int64(grown)) }
    }

    private static let uplinkStates = ["sealed", "delivered", "quarantined", "dropped"]
    private static var events: MetricNameDescriptor { Metric.named("sensor_uplink_events", "Events by fate, as each sensor last reported (since it started).") }
    private static var spooled: MetricNameDescriptor { Metric.named("sensor_uplink_spooled_batches", "Batches waiting in each sensor's spool.") }
    private static var stale: MetricNameDescriptor { Metric.named("sensor_blocklist_stale",
                                            "1 when a sensor heard no fresh signed block-list answer within its FLEET_STALE_AFTER.") }

    /// `heartbeats`: each shown sensor's (label-safe) name and last heartbeat, uplink present.
    func showSensors(_ heartbeats: [String: Heartbeat], in r: PrometheusCollectorRegistry) {
        let gone = state.withLock { s -> Set<String> in
            defer { s.sensors = Set(heartbeats.keys) }
            return s.sensors.subtracting(heartbeats.keys)
        }
        for name in gone {
            for state in Self.uplinkStates {
                r.unregisterGauge(r.makeGauge(descriptor: Self.events, labels: [("sensor", name), ("state", state)]))
            }
            r.unregisterGauge(r.makeGauge(descriptor: Self.spooled, labels: [("sensor", name)]))
            r.unregisterGauge(r.makeGauge(descriptor: Self.stale, labels: [("sensor", name)]))
        }
        for (name, h) in heartbeats {
            guard let u = h.uplink else { continue }
            for (state, count) in zip(Self.uplinkStates, [u.sealedEvents, u.deliveredEvents, u.quarantinedEvents, u.droppedEvents]) {
                r.makeGauge(descriptor: Self.events, labels: [("sensor", name), ("state", state)]).set(Int64(count))
            }
            r.makeGauge(descriptor: Self.spooled, labels: [("sensor", name)]).set(Int64(u.spoolBatches))
            r.makeGauge(descriptor: Self.stale, labels: [("sensor", name)]).set(Int64(h.blocklistStale == true ? 1 : 0))
        }
    }
}
