import Foundation
import Hummingbird
import PortsentryShared
import ControllerCore

/// The operator's JSON API, behind a bearer token (`operator.token` in the data directory):
/// sensors, events, decisions (ban, unban), the allowlist, and the fleet's distribution
/// state. The CLI offers the same through the database.
extension ControllerAPI {
    /// Operator request bodies are small JSON objects.
    static let maxOperatorBytes = 16 << 10

    func addOperatorRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v1/sensors") { request, _ in try await authorized(request) { Self.json(try await sensorsJSON()) } }
        router.get("/v1/events") { request, _ in try await authorized(request) { try await listEvents(request) } }
        router.get("/v1/decisions") { request, _ in try await authorized(request) { try await listDecisions(request) } }
        router.post("/v1/decisions") { request, _ in try await authorized(request) { try await ban(request) } }
        router.delete("/v1/decisions") { request, _ in try await authorized(request) { try await unban(request) } }
        router.get("/v1/allowlist") { request, _ in try await authorized(request) { try await listAllowlist() } }
        router.post("/v1/allowlist") { request, _ in try await authorized(request) { try await allow(request) } }
        router.delete("/v1/allowlist") { request, _ in try await authorized(request) { try await disallow(request) } }
        router.get("/v1/fleet") { request, _ in try await authorized(request) { try await fleetStatus() } }
    }

    private func listEvents(_ request: Request) async throws -> Response {
        let sinceText = request.uri.queryParameters.get("since")
        let since = sinceText.flatMap { Int64($0) }.flatMap(Bounds.duration)
        if sinceText != nil, since == nil {
            return Self.json(["error": "since: \(Bounds.durationError)"], status: .badRequest)
        }
        // At most 100,000 events an answer: a bound on memory and time, not a page size.
        let limit = min(max(request.uri.queryParameters.get("limit", as: Int.self) ?? 1000, 0), 100_000)
        let from = since.map { clock() - $0 * 1000 } ?? 0
        return try await Self.json(["events": store.events(since: from, limit: limit).map(Self.eventObject)])
    }

    private func listDecisions(_ request: Request) async throws -> Response {
        let all = request.uri.queryParameters.get("all") != nil
        let list = all ? try await store.recentDecisions(limit: 1000) : try await store.activeDecisions(now: clock() / 1000)
        return Self.json(["decisions": list.map(Self.decisionObject)])
    }

    private func ban(_ request: Request) async throws -> Response {
        guard let (scope, seconds, reason) = try await scopeRequest(request) else {
            return Self.json(["error": "expected {\"scope\": ADDRESS or PREFIX, \"duration\": seconds (0 = until unbanned, at most ten years), \"reason\"}"],
                             status: .badRequest)
        }
        switch try await fleet.engine.decide(scope: scope, origin: .manual, reason: reason ?? "manual ban", duration: seconds,
                                             nowMillis: clock()) {
        case .decided(let d, let revision):
            fleet.metrics.add("decided_manual")
            // Sensors' claims never veto an operator; the operator is told what overlaps.
            let overlaps = fleet.protected.claims(overlapping: scope, now: clock() / 1000).map(ProtectedRegistry.describe)
            return Self.json(["decision": Self.decisionObject(d), "revision": revision, "overlaps": overlaps])
        case .alreadyCovered(let d): return Self.json(["decision": Self.decisionObject(d), "already_covered": true])
        case .protected(let why), .allowlisted(let why), .knownPeer(let why): return Self.json(["error": why], status: .conflict)
        }
    }

    private func unban(_ request: Request) async throws -> Response {
        guard let scope = Self.scopeParameter(request) else {
            return Self.json(["error": "expected ?scope=ADDRESS or PREFIX"], status: .badRequest)
        }
        return Self.json(["lifted": try await fleet.engine.unban(scope: scope, nowMillis: clock())])
    }

    private func listAllowlist() async throws -> Response {
        Self.json(["allowlist": try await store.allows(now: clock() / 1000).map {
            ["scope": $0.scope, "reason": $0.reason, "created_ms": $0.createdMs, "expires": $0.expires] as [String: Any]
        }])
    }

    private func allow(_ request: Request) async throws -> Response {
        guard let (scope, seconds, reason) = try await scopeRequest(request) else {
            return Self.json(["error": "expected {\"scope\", \"duration\" (0 = until removed), \"reason\"}"], status: .badRequest)
        }
        let lifted = try await fleet.engine.allow(scope: scope, seconds: seconds ?? 0, reason: reason ?? "allowlisted",
                                                  nowMillis: clock())
        return Self.json(["allowlisted": scope.description, "lifted": lifted])
    }

    private func disallow(_ request: Request) async throws -> Response {
        guard let scope = Self.scopeParameter(request) else {
            return Self.json(["error": "expected ?scope=ADDRESS or PREFIX"], status: .badRequest)
        }
        return Self.json(["removed": try await store.removeAllow(scope: scope.description)])
    }

    private static func scopeParameter(_ request: Request) -> IPPrefix? {
        request.uri.queryParameters.get("scope").flatMap { try? IPPrefix(parsing: $0) }
    }

    private func fleetStatus() async throws -> Response {
        let samples = fleet.metrics.samples.sorted()
        let b = await fleet.correlation.breakerStatus(nowMillis: clock())
        func pct(_ q: Double) -> Any { samples.isEmpty ? NSNull() : samples[min(samples.count - 1, Int(q * Double(samples.count)))] }
        return Self.json([
            "revision": await fleet.hub.current,
            "time_to_enforce_seconds": ["count": samples.count, "p50": pct(0.5), "p99": pct(0.99)],
            "tracked_sources": await fleet.correlation.trackedSources,
            "breaker": ["open": b.open, "limit_per_minute": b.limitPerMinute, "refused": b.refused, "openings": b.openings],
            "protected": fleet.protected.allClaims(now: clock() / 1000).map {
                ["scope": $0.prefix.description, "kind": $0.kind.rawValue, "sensor": $0.sensor]
            },
            "sensors": try await sensorsJSON()["sensors"] ?? [],
        ])
    }

    private func authorized(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        guard let token = fleet.operatorToken else {
            return Self.json(["error": "the operator API is disabled (no operator.token in the data directory)"], status: .forbidden)
        }
        let given = Self.headerLookup(request)("Authorization") ?? ""
        guard Self.constantTimeEqual(Array(given.utf8), Array("Bearer \(token)".utf8)) else {
            metrics.add("refused_operator")
            return Self.json(["error": "missing or wrong bearer token"], status: .unauthorized)
        }
        return try await body()
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    private func scopeRequest(_ request: Request) async throws -> (IPPrefix, Int64?, String?)? {
        guard let bytes = try? await request.body.collect(upTo: Self.maxOperatorBytes) else { return nil }
        return Self.decodeScopeRequest(Array(bytes.readableBytesView))
    }

    /// `{"scope": ADDRESS or PREFIX, "duration": seconds, "reason": text}` from an operator; nil
    /// when anything is missing, malformed or out of bounds.
    static func decodeScopeRequest(_ bytes: [UInt8]) -> (IPPrefix, Int64?, String?)? {
        guard bytes.count <= maxOperatorBytes,
              let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let text = object["scope"] as? String, let scope = try? IPPrefix(parsing: text) else { return nil }
        var seconds: Int64? = nil
        if let n = object["duration"] {
            // Any JSON number: checked as a double first, so 1e300 or 2^63 is refused, not wrapped.
            guard let number = n as? NSNumber, number.doubleValue >= 0, number.doubleValue <= Double(Bounds.maxDurationSeconds),
                  let whole = Bounds.duration(number.int64Value) else { return nil }
            seconds = whole
        }
        return (scope, seconds, (object["reason"] as? String).map { String($0.prefix(500)) })
    }

    private func sensorsJSON() async throws -> [String: Any] {
        let now = clock() / 1000
        let current = await fleet.hub.current
        return ["sensors": try await store.sensors().map { Self.sensorObject($0, now: now, revision: current) }]
    }

    /// A sensor as the API and `sensors list --json` show it; `revision` is the current block list's.
    static func sensorObject(_ s: SensorRecord, now: Int64, revision: Int64) -> [String: Any] {
        var o: [String: Any] = ["name": s.name, "revoked": s.revoked, "last_sequence": s.lastSequence, "last_seen": s.lastSeen,
                                "lag_seconds": now - s.lastSeen, "version": s.version,
                                "blocklist": ["applied_revision": s.appliedRevision, "revision_lag": max(0, revision - s.appliedRevision),
                                              "digest": s.appliedDigest, "applied_ms": s.appliedAt]]
        if let status = try? JSONSerialization.jsonObject(with: Data(s.status.utf8)) { o["status"] = status }
        return o
    }

    static func eventObject(_ e: EventRecord) -> [String: Any] {
        ["id": e.id, "sensor": e.sensor, "time_ns": e.timeNs, "source": e.source, "destination": e.destination,
         "protocol": e.proto, "port": e.port, "type": e.type, "evidence": e.evidence, "received_ms": e.receivedAt,
         "blocked": e.blocked.map { $0 as Any } ?? NSNull()]
    }

    static func decisionObject(_ d: DecisionRecord) -> [String: Any] {
        ["id": d.id ?? 0, "scope": d.scope, "origin": d.origin, "reason": d.reason, "created_ms": d.createdMs,
         "expires": d.expires, "revoked": d.revoked, "offense": d.offense,
         "events": (try? JSONSerialization.jsonObject(with: Data(d.events.utf8))) ?? []]
    }
}
