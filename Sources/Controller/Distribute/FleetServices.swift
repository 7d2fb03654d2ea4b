import Foundation
import Logging
import ServiceLifecycle
import PortsentryShared
import Synchronization

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
    /// The `sha256//BASE64` pin of the TLS certificate served, handed to sensors at
    /// enrollment so they accept no other key afterwards (nil: none is reported).
    var tlsPin: String? = nil

    static func make(store: any ControllerStore, signing: Ed25519.PrivateKey, policy: CorrelationPolicy,
                     operatorToken: String?, logger: Logger, ownAddresses: [IPAddress] = ProtectedRegistry.localAddresses())
        async throws -> FleetServices {
        let (revision, _) = try await store.currentRevision()
        let hub = RevisionHub(current: revision)
        let protected = ProtectedRegistry(configured: policy.protected, own: ownAddresses)
        for s in try await store.sensors() where !s.revoked { protected.update(sensor: s.name, status: s.status) }
        let metrics = FleetMetrics()
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

    /// Follows revisions made elsewhere (the CLI, other controller replicas on the same
    /// database) so their sensors' long polls wake within `interval`.
    func followStore(interval: Duration = .milliseconds(100)) async {
        while !Task.isCancelled {
            if let (revision, _) = try? await lists.store.currentRevision() { await hub.advance(to: revision) }
            try? await Task.sleep(for: interval)
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
