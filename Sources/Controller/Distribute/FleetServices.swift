import Foundation
import Logging
import ServiceLifecycle
import PortsentryShared
import Prometheus
import Synchronization
import ControllerCore

/// Everything behind correlation and distribution, shared by the API routes: the decision
/// engine, the correlator, the revision hub the long polls wait on, the block-list builder,
/// the protected-address registry and the metrics.
struct FleetServices: Sendable {
    let hub: RevisionHub
    let lists: BlockListService
    let engine: DecisionEngine
    let correlation: CorrelationService
    let metrics: FleetMetrics
    let protected: ProtectedRegistry
    /// Bearer token for the operator API (`operator.token` in the data directory); nil
    /// disables the operator API.
    let operatorToken: String?
    /// The last (revision, digest) each sensor reported, so the store is written only on change.
    let applied = AppliedRevisions()
    /// Each sensor's newest poll timestamp: an older or equal one is a replay.
    let polls = PollClock()
    /// What `/metrics` exported last of the state it reads at scrape time.
    let exported = ScrapeState()
    /// The `sha256//BASE64` pin of the TLS certificate served, handed to sensors at
    /// enrollment so they accept no other key afterwards (nil: none is reported).
    var tlsPin: String? = nil

    static func make(store: any ControllerStore, signing: Ed25519.PrivateKey, policy: CorrelationPolicy,
                     operatorToken: String?, logger: Logger, ownAddresses: [IPAddress] = ProtectedRegistry.localAddresses())
        async throws -> FleetServices {
        let (revision, _) = try await store.currentRevision()
        let hub = RevisionHub(current: revision)
        let protected = ProtectedRegistry(configured: policy.protected, own: ownAddresses, sessionGrace: policy.sessionGrace,
                                          peerMemory: policy.peerMemory)
        let nowSeconds = Int64(Date().timeIntervalSince1970)
        for s in try await store.sensors() where !s.revoked { protected.update(sensor: s.name, status: s.status, now: nowSeconds) }
        let metrics = FleetMetrics(registry: PrometheusCollectorRegistry())
        let engine = DecisionEngine(store: store, policy: policy, protected: protected, logger: logger,
                                    published: { await hub.advance(to: $0) })
        let correlation = CorrelationService(policy: policy, engine: engine, metrics: metrics, logger: logger)
        let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)
        let recent = try await store.events(since: nowMillis - policy.window * 1000, limit: FleetCorrelator.maxSources)
        await correlation.warm(recent, nowMillis: nowMillis)
        if !recent.isEmpty { logger.info("Correlation warmed with \(recent.count) events from the last \(policy.window) s") }
        return FleetServices(hub: hub, lists: BlockListService(store: store, key: signing), engine: engine, correlation: correlation,
                             metrics: metrics, protected: protected, operatorToken: operatorToken)
    }

    /// A sensor's heartbeat: takes its protection report, and lifts at once any automatic
    /// decision covering what became protected with it (an admin session that just started).
    func heartbeat(sensor: String, status: String, nowMillis: Int64, logger: Logger) async {
        guard let fresh = protected.update(sensor: sensor, status: status, now: nowMillis / 1000) else {
            logger.warning("Heartbeat from \(sensor) carries no readable protection report; its previous claims stay")
            return
        }
        guard !fresh.isEmpty else { return }
        do {
            let lifted = try await engine.liftAutomatic(covering: fresh, nowMillis: nowMillis)
            if lifted > 0 { metrics.add("lifted_protected", lifted) }
        } catch {
            logger.error("Cannot lift decisions covering newly protected addresses of \(sensor): \(error)")
        }
    }

    /// `/metrics`: the registry's text, after the gauges read from live state (the breaker,
    /// the protected registry, each sensor's last heartbeat) are brought up to date.
    func metricsText(nowMillis: Int64) async -> String {
        await refreshGauges(nowMillis: nowMillis)
        return metrics.registry.emitToString()
    }

    private func refreshGauges(nowMillis: Int64) async {
        let r = metrics.registry
        func gauge(_ name: String, _ help: String, _ value: some BinaryInteger, labels: [(String, String)] = []) {
            r.makeGauge(descriptor: Metric.named(name, help), labels: labels).set(Int64(value))
        }
        let b = await correlation.breakerStatus(nowMillis: nowMillis)
        let c = protected.counts(now: nowMillis / 1000)
        gauge("breaker_open", "1 while the fleet circuit breaker refuses automatic decisions.", b.open ? 1 : 0)
        gauge("protected_claims", "Believed protection claims from sensors (own addresses, gateways, resolvers, ignore entries).", c.claims)
        gauge("protected_sessions", "Admin-session peers protected fleet-wide (live or in grace).", c.sessions)
        gauge("known_peers", "Addresses that completed real connections with fleet members (PEER_MEMORY).", c.knownPeers)
        gauge("sensor_fleet_skipped", "Fleet-list entries sensors refused to enforce on themselves (protected there).", c.fleetSkipped)
        // Totals kept elsewhere, exported as counters: advanced by what they grew since the last scrape.
        exported.advance("breaker_openings_total", "Times the fleet circuit breaker opened.", to: b.openings, in: r)
        exported.advance("protected_claims_implausible_total",
                         "Sensor claims not believed (gateway or resolver off its networks, ignore entry too wide).", to: Int(c.implausible), in: r)
        await refreshSensorGauges()
    }

    /// What each sensor's last heartbeat says became of its events: delivered, quarantined,
    /// dropped, still spooled (the sensor's own counts since it started). A sensor revoked or
    /// removed since the last scrape disappears from the output.
    private func refreshSensorGauges() async {
        guard let sensors = try? await lists.store.sensors() else { return }
        var shown: [String: Heartbeat] = [:]
        for s in sensors where !s.revoked {
            if let h = try? WireJSON.decode(Heartbeat.self, from: Array(s.status.utf8)), h.uplink != nil { shown[MetricLabel.clean(s.name)] = h }
        }
        exported.showSensors(shown, in: metrics.registry)
    }

    /// Follows revisions made elsewhere (the CLI, other controller replicas on the same
    /// database) so their sensors' long polls wake within `interval`.
    func followStore(interval: Duration = .milliseconds(100)) async {
        while !Task.isCancelled {
            if let (revision, _) = try? await lists.store.currentRevision() { await hub.advance(to: revision) }
            try? await Task.sleep(for: interval)
        }
    }
}

/// The newest poll timestamp seen from each sensor (with the signed-timestamp window, this
/// makes every poll usable once).
final class PollClock: Sendable {
    private let map = Mutex<[String: Int64]>([:])
    /// True, and remembered, when `millis` is newer than the sensor's last poll.
    func advance(sensor: String, to millis: Int64) -> Bool {
        map.withLock { m in
            guard millis > m[sensor] ?? .min else { return false }
            m[sensor] = millis
            return true
        }
    }
}

/// What each sensor last reported applying.
final class AppliedRevisions: Sendable {
    private let map = Mutex<[String: (revision: Int64, digest: String)]>([:])
    func get(_ sensor: String) -> (revision: Int64, digest: String)? { map.withLock { $0[sensor] } }
    func set(_ sensor: String, _ value: (revision: Int64, digest: String)) { map.withLock { $0[sensor] = value } }
}

/// The service that follows the store for outside revisions. It is shut down before the
/// HTTP server (services stop in reverse order), and closing the hub then answers every held
/// long poll, so the server's graceful shutdown does not wait out their timeouts.
struct FleetFollower: Service {
    let fleet: FleetServices

    func run() async throws {
        await cancelWhenGracefulShutdown { await fleet.followStore() }
        await fleet.hub.close()
    }
}
