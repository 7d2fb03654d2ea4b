import Foundation
import Hummingbird
import PortsentryShared
import ControllerCore

/// The operator's JSON API, behind `OperatorAuth` (`operator.token` in the data directory):
/// sensors, events, decisions (ban, unban), the allowlist, and the fleet's distribution
/// state. The CLI offers the same through the database.
extension ControllerAPI {
    /// Operator request bodies are small JSON objects.
    static let maxOperatorBytes = 16 << 10

    func addOperatorRoutes(to router: Router<ControllerContext>) {
        let api = router.group().add(middleware: OperatorAuth(token: fleet.operatorToken, metrics: metrics))
        api.get("/v1/sensors") { _, _ in Self.json(OperatorReply(sensors: try await sensorViews())) }
        api.get("/v1/events") { request, _ in try await listEvents(request) }
        api.get("/v1/decisions") { request, _ in try await listDecisions(request) }
        api.post("/v1/decisions") { request, _ in try await ban(request) }
        api.delete("/v1/decisions") { request, _ in try await unban(request) }
        api.get("/v1/allowlist") { _, _ in try await listAllowlist() }
        api.post("/v1/allowlist") { request, _ in try await allow(request) }
        api.delete("/v1/allowlist") { request, _ in try await disallow(request) }
        api.get("/v1/fleet") { _, _ in try await fleetStatus() }
    }

    private func listEvents(_ request: Request) async throws -> Response {
        let sinceText = request.uri.queryParameters.get("since")
        let since = sinceText.flatMap { Int64($0) }.flatMap(Bounds.duration)
        if sinceText != nil, since == nil {
            return Self.error("since: \(Bounds.durationError)", status: .badRequest)
        }
        // At most 100,000 events an answer: a bound on memory and time, not a page size.
        let limit = min(max(request.uri.queryParameters.get("limit", as: Int.self) ?? 1000, 0), 100_000)
        let from = since.map { clock() - $0 * 1000 } ?? 0
        return try await Self.json(OperatorReply(events: store.events(since: from, limit: limit).map(Self.eventView)))
    }

    private func listDecisions(_ request: Request) async throws -> Response {
        let all = request.uri.queryParameters.get("all") != nil
        let list = all ? try await store.recentDecisions(limit: 1000) : try await store.activeDecisions(now: clock() / 1000)
        return Self.json(OperatorReply(decisions: list.map(Self.decisionView)))
    }

    private func ban(_ request: Request) async throws -> Response {
        guard let (scope, seconds, reason) = try await scopeRequest(request) else {
            return Self.error("expected {\"scope\": ADDRESS or PREFIX, \"duration\": whole seconds (0 = until unbanned, at most ten years), \"reason\"}",
                              status: .badRequest)
        }
        switch try await fleet.engine.decide(scope: scope, origin: .manual, reason: reason ?? "manual ban", duration: seconds,
                                             nowMillis: clock()) {
        case .decided(let d, let revision):
            fleet.metrics.add("decided_manual")
            // Sensors' claims never veto an operator; the operator is told what overlaps.
            let overlaps = fleet.protected.claims(overlapping: scope, now: clock() / 1000).map(ProtectedRegistry.describe)
            return Self.json(OperatorReply(decision: Self.decisionView(d), revision: revision, overlaps: overlaps))
        case .alreadyCovered(let d): return Self.json(OperatorReply(decision: Self.decisionView(d), alreadyCovered: true))
        case .protected(let why), .allowlisted(let why), .knownPeer(let why): return Self.error(why, status: .conflict)
        }
    }

    private func unban(_ request: Request) async throws -> Response {
        guard let scope = Self.scopeParameter(request) else {
            return Self.error("expected ?scope=ADDRESS or PREFIX", status: .badRequest)
        }
        return Self.json(OperatorReply(lifted: try await fleet.engine.unban(scope: scope, nowMillis: clock())))
    }

    private func listAllowlist() async throws -> Response {
        Self.json(OperatorReply(allowlist: try await store.allows(now: clock() / 1000).map {
            AllowView(scope: $0.scope, reason: $0.reason, createdMillis: $0.createdMs, expires: $0.expires)
        }))
    }

    private func allow(_ request: Request) async throws -> Response {
        guard let (scope, seconds, reason) = try await scopeRequest(request) else {
            return Self.error("expected {\"scope\", \"duration\" (whole seconds, 0 = until removed), \"reason\"}", status: .badRequest)
        }
        let lifted = try await fleet.engine.allow(scope: scope, seconds: seconds ?? 0, reason: reason ?? "allowlisted",
                                                  nowMillis: clock())
        return Self.json(OperatorReply(lifted: lifted, allowlisted: scope.description))
    }

    private func disallow(_ request: Request) async throws -> Response {
        guard let scope = Self.scopeParameter(request) else {
            return Self.error("expected ?scope=ADDRESS or PREFIX", status: .badRequest)
        }
        return Self.json(OperatorReply(removed: try await store.removeAllow(scope: scope.description)))
    }

    private static func scopeParameter(_ request: Request) -> IPPrefix? {
        request.uri.queryParameters.get("scope").flatMap { try? IPPrefix(parsing: $0) }
    }

    private func fleetStatus() async throws -> Response {
        let samples = fleet.metrics.samples.sorted()
        func pct(_ q: Double) -> Double? { samples.isEmpty ? nil : samples[min(samples.count - 1, Int(q * Double(samples.count)))] }
        return Self.json(FleetView(
            revision: await fleet.hub.current,
            timeToEnforceSeconds: .init(count: samples.count, p50: pct(0.5), p99: pct(0.99)),
            trackedSources: await fleet.correlation.trackedSources,
            breaker: await fleet.correlation.breakerStatus(nowMillis: clock()),
            protected: fleet.protected.allClaims(now: clock() / 1000).map {
                FleetView.Protected(scope: $0.prefix.description, kind: $0.kind.rawValue, sensor: $0.sensor)
            },
            sensors: try await sensorViews()))
    }

    private func scopeRequest(_ request: Request) async throws -> (IPPrefix, Int64?, String?)? {
        guard let bytes = try? await request.body.collect(upTo: Self.maxOperatorBytes) else { return nil }
        return Self.decodeScopeRequest(Array(bytes.readableBytesView))
    }

    /// `{"scope": ADDRESS or PREFIX, "duration": seconds, "reason": text}` from an operator; nil
    /// when anything is missing, malformed or out of bounds (a duration that is not a whole
    /// number of seconds between 0 and ten years: 1e300, 2^63 and 1.5 are refused).
    static func decodeScopeRequest(_ bytes: [UInt8]) -> (IPPrefix, Int64?, String?)? {
        guard bytes.count <= maxOperatorBytes, let request = try? WireJSON.decode(ScopeRequest.self, from: bytes) else { return nil }
        var seconds: Int64? = nil
        if let n = request.duration {
            guard let whole = Bounds.duration(n) else { return nil }
            seconds = whole
        }
        return (request.scope, seconds, request.reason.map { String($0.prefix(500)) })
    }

    private func sensorViews() async throws -> [SensorView] {
        let now = clock() / 1000
        let current = await fleet.hub.current
        return try await store.sensors().map { Self.sensorView($0, now: now, revision: current) }
    }

    /// A sensor as the API and `sensors list --json` show it; `revision` is the current block list's.
    static func sensorView(_ s: SensorRecord, now: Int64, revision: Int64) -> SensorView {
        SensorView(name: s.name, revoked: s.revoked, lastSequence: s.lastSequence, lastSeen: s.lastSeen, lagSeconds: now - s.lastSeen,
                   version: s.version,
                   blocklist: .init(appliedRevision: s.appliedRevision, revisionLag: max(0, revision - s.appliedRevision),
                                    digest: s.appliedDigest, appliedMillis: s.appliedAt),
                   status: try? WireJSON.decode(Heartbeat.self, from: Array(s.status.utf8)))
    }

    static func eventView(_ e: EventRecord) -> EventView {
        EventView(id: e.id, sensor: e.sensor, timeNanos: e.timeNs, source: e.source, destination: e.destination, protocol: e.proto,
                  port: e.port, type: e.type, evidence: e.evidence, receivedMillis: e.receivedAt, blocked: e.blocked)
    }

    static func decisionView(_ d: DecisionRecord) -> DecisionView {
        DecisionView(id: d.id ?? 0, scope: d.scope, origin: d.origin, reason: d.reason, createdMillis: d.createdMs, expires: d.expires,
                     revoked: d.revoked, offense: d.offense, events: d.evidenceIDs)
    }
}
