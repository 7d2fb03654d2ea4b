@testable import Controller
import Foundation
import Logging
import PortsentryShared
import Testing
@testable import ControllerCore

/// The fleet cannot be turned against itself: every rule of the protected set, the weighing
/// of forgeable evidence, the fleet breaker and the "a sensor testifies only about itself"
/// rule, one at a time, then together in a sweep forged from a fleet member's address.
@Suite struct ProtectionTests {
    static let now: Int64 = 1_764_000_000
    static let nowMillis = now * 1000

    static func prefix(_ text: String) -> IPPrefix { try! IPPrefix(parsing: text) }
    static func address(_ text: String) -> IPAddress { IPAddress(text)! }

    /// A sensor at 10.0.<n>.5/24 with gateway .1 and resolver .53.
    static func report(_ n: Int) -> ProtectionReport {
        var r = ProtectionReport()
        r.addresses = [address("10.0.\(n).5"), address("fd00:\(n)::5")]
        r.networks = [prefix("10.0.\(n).0/24"), prefix("fd00:\(n)::/64")]
        r.gateways = [address("10.0.\(n).1")]
        r.resolvers = [address("10.0.\(n).53")]
        return r
    }

    // MARK: the registry

    @Test func ownAddressesGatewaysAndResolversOnOwnNetworksAreProtected() {
        let r = ProtectedRegistry(configured: [], own: [])
        r.update(sensor: "s1", report: Self.report(1), now: Self.now)
        for scope in ["10.0.1.5", "fd00:1::5", "10.0.1.1", "10.0.1.53", "10.0.1.0/24"] {
            #expect(r.protection(covering: Self.prefix(scope), now: Self.now) != nil, "\(scope)")
        }
        #expect(r.protection(covering: Self.prefix("10.0.1.6"), now: Self.now) == nil)
        #expect(r.ownAddresses(of: "s1") == Set([Self.address("10.0.1.5"), Self.address("fd00:1::5")]))
    }

    @Test func foreignGatewayAndResolverClaimsAreNotBelieved() {
        let r = ProtectedRegistry(configured: [], own: [])
        var claims = Self.report(1)
        claims.gateways.append(Self.address("203.0.113.66"))
        claims.resolvers.append(Self.address("198.51.100.53"))
        // A network wider than /16 does not make anything on it plausible.
        claims.networks.append(Self.prefix("0.0.0.0/1"))
        r.update(sensor: "s1", report: claims, now: Self.now)
        #expect(r.protection(covering: Self.prefix("203.0.113.66"), now: Self.now) == nil)
        #expect(r.protection(covering: Self.prefix("198.51.100.53"), now: Self.now) == nil)
        #expect(r.counts(now: Self.now).implausible == 2)
    }

    @Test func ignoreEntriesAreProtectedUnlessTooWide() {
        let r = ProtectedRegistry(configured: [], own: [])
        var claims = Self.report(1)
        claims.ignored = [Self.prefix("198.51.100.0/24"), Self.prefix("100.64.0.0/10"), Self.prefix("2001:db8::/32")]
        r.update(sensor: "s1", report: claims, now: Self.now)
        #expect(r.protection(covering: Self.prefix("198.51.100.7"), now: Self.now) != nil)
        #expect(r.protection(covering: Self.prefix("100.64.1.1"), now: Self.now) == nil, "a /10 is too wide to believe")
        #expect(r.protection(covering: Self.prefix("2001:db8::1"), now: Self.now) == nil, "a /32 is too wide to believe")
    }

    @Test func anAdminSessionIsProtectedWhileLiveAndForTheGraceAfter() {
        let r = ProtectedRegistry(configured: [], own: [], sessionGrace: 600)
        var claims = Self.report(1)
        claims.sessions = [Self.address("192.0.2.10")]
        let fresh = r.update(sensor: "s1", report: claims, now: Self.now)
        #expect(fresh.contains { $0.kind == .session && $0.prefix == Self.prefix("192.0.2.10") })
        // The session ends: still protected within the grace period, not after.
        r.update(sensor: "s1", report: Self.report(1), now: Self.now + 30)
        #expect(r.protection(covering: Self.prefix("192.0.2.10"), now: Self.now + 599) != nil)
        r.update(sensor: "s1", report: Self.report(1), now: Self.now + 601)
        #expect(r.protection(covering: Self.prefix("192.0.2.10"), now: Self.now + 601) == nil)
        // A repeated report of the same state is nothing new.
        #expect(r.update(sensor: "s1", report: Self.report(1), now: Self.now + 602).isEmpty)
    }

    @Test func operatorsAreRefusedOnlyByTheControllersOwnConfig() {
        let r = ProtectedRegistry(configured: [Self.prefix("192.0.2.0/28")], own: [Self.address("10.9.9.9")])
        r.update(sensor: "s1", report: Self.report(1), now: Self.now)
        #expect(r.operatorProtection(covering: Self.prefix("10.0.1.5")) == nil)
        #expect(r.claims(overlapping: Self.prefix("10.0.1.0/24"), now: Self.now).count == 3)
        #expect(r.operatorProtection(covering: Self.prefix("192.0.2.3")) != nil)
        #expect(r.operatorProtection(covering: Self.prefix("10.9.9.9")) != nil)
    }

    @Test func reportsAreBoundedAndAHeartbeatWithoutOneChangesNothing() {
        let r = ProtectedRegistry(configured: [], own: [])
        var claims = Self.report(1)
        claims.peers = (0..<5000).map { IPAddress(ipv4: 0xC633_0000 + UInt32($0)) }
        r.update(sensor: "s1", report: claims.bounded(), now: Self.now)
        #expect(r.counts(now: Self.now).knownPeers == ProtectionReport.maxPeers)
        #expect(r.update(sensor: "s1", status: #"{"version":"x"}"#, now: Self.now) == nil)
        #expect(r.ownAddresses(of: "s1") != nil, "earlier claims stay")
        // The heartbeat body's own form, as the sensor sends it.
        var heartbeat = Heartbeat()
        heartbeat.protection = Self.report(2)
        let body = String(decoding: WireJSON.encode(heartbeat), as: UTF8.self)
        #expect(r.update(sensor: "s2", status: body, now: Self.now) != nil)
        #expect(r.ownAddresses(of: "s2")?.contains(Self.address("10.0.2.5")) == true)
    }

    // MARK: the breaker

    @Test func theBreakerOpensOnceAndClosesWhenTheRateFalls() {
        var b = FleetBreaker(limit: 3)
        #expect((0..<3).map { _ in b.ask(now: Self.now) } == [.allow, .allow, .allow])
        #expect(b.ask(now: Self.now + 1) == .opened)
        #expect(b.ask(now: Self.now + 2) == .refuse)
        #expect(b.isOpen && b.refused == 2 && b.openings == 1)
        #expect(b.ask(now: Self.now + 61) == .allow)
        #expect(!b.isOpen)
    }

    // MARK: decisions

    func service(policy: CorrelationPolicy = CorrelationPolicy(), sensors: Int = 6) throws -> (CorrelationService, DecisionEngine, ProtectedRegistry, FleetMetrics, SQLiteStore, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-prot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir.appendingPathComponent("c.db").path)
        let registry = ProtectedRegistry(configured: [], own: [], sessionGrace: policy.sessionGrace, peerMemory: policy.peerMemory)
        for n in 1...sensors { registry.update(sensor: "s\(n)", report: Self.report(n), now: Self.now) }
        let engine = DecisionEngine(store: store, policy: policy, protected: registry, logger: Logger(label: "test"), published: nil)
        let metrics = FleetMetrics()
        return (CorrelationService(policy: policy, engine: engine, metrics: metrics, logger: Logger(label: "test")), engine, registry,
                metrics, store, dir)
    }

    static func probe(_ sensor: Int, from source: String, port: Int = 79, evidence: String = "tripwire", to host: String? = nil,
                      id: Int = 0) -> EventRecord {
        EventRecord(id: "s\(sensor):1:\(id)", sensor: "s\(sensor)", timeNs: 0, source: source, destination: host ?? "10.0.\(sensor).5",
                    proto: "TCP", port: port, type: "syn", evidence: evidence, blocked: nil, receivedAt: Self.nowMillis)
    }

    @Test func aSweepForgedFromAFleetMemberAndAnAdminBlocksNothing() async throws {
        let (svc, _, registry, metrics, store, dir) = try service()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The admin has a live SSH session on s1.
        var s1 = Self.report(1)
        s1.sessions = [Self.address("198.51.100.77")]
        registry.update(sensor: "s1", report: s1, now: Self.now)
        // One forged SYN per host "from" s2's address, and from the admin's.
        let forged = (1...6).filter { $0 != 2 }.map { Self.probe($0, from: "10.0.2.5", id: $0) }
            + (1...6).map { Self.probe($0, from: "198.51.100.77", id: 10 + $0) }
        let outcomes = await svc.observe(forged, nowMillis: Self.nowMillis)
        #expect(outcomes.count == 2)
        #expect(outcomes.allSatisfy { if case .protected = $0 { return true } else { return false } })
        #expect(metrics.value("refused_protected") == 2)
        #expect(try await store.activeDecisions(now: Self.now).isEmpty)
        // A real sweep from the attacker's own address is still decided: short, stealth-only.
        let real = (1...5).map { Self.probe($0, from: "203.0.113.9", id: 20 + $0) }
        let decided = await svc.observe(real, nowMillis: Self.nowMillis)
        guard case .decided(let d, _) = decided.first else { Issue.record("no decision on a real sweep: \(decided)"); return }
        #expect(d.expires - Self.now == CorrelationPolicy().stealthMaxDuration)
    }

    @Test func stealthEvidenceNeverBlocksAKnownPeerAndNeverEscalates() async throws {
        var policy = CorrelationPolicy()
        policy.stealthMaxDuration = 300
        let (_, engine, registry, _, store, dir) = try service(policy: policy)
        defer { try? FileManager.default.removeItem(at: dir) }
        var s3 = Self.report(3)
        s3.peers = [Self.address("192.0.2.80")]
        registry.update(sensor: "s3", report: s3, now: Self.now)
        let known = try await engine.decide(scope: Self.prefix("192.0.2.80"), origin: .correlation, reason: "t", proven: false,
                                            nowMillis: Self.nowMillis)
        guard case .knownPeer = known else { Issue.record("stealth evidence blocked a known peer: \(known)"); return }
        // With a handshake among the evidence it is decided, with the normal duration.
        let proven = try await engine.decide(scope: Self.prefix("192.0.2.80"), origin: .correlation, reason: "t", proven: true,
                                             nowMillis: Self.nowMillis)
        guard case .decided(let p, _) = proven else { Issue.record("\(proven)"); return }
        #expect(p.expires - Self.now == policy.blockDuration)
        // Repeated stealth-only decisions on another address stay at the short duration.
        var t = Self.nowMillis
        for _ in 0..<3 {
            let o = try await engine.decide(scope: Self.prefix("203.0.113.50"), origin: .correlation, reason: "t", proven: false, nowMillis: t)
            guard case .decided(let d, _) = o else { Issue.record("\(o)"); return }
            #expect(d.expires - t / 1000 == 300)
            t += 301_000
        }
        #expect(try await store.activeDecisions(now: t / 1000).count == 1)
    }

    @Test func eventsAboutAnotherSensorsAddressesAreNotCorrelated() async throws {
        let (svc, _, _, metrics, store, dir) = try service()
        defer { try? FileManager.default.removeItem(at: dir) }
        // s1 claims to have seen probes aimed at five other hosts' addresses: it cannot know.
        let lies = (2...6).map { Self.probe(1, from: "203.0.113.70", to: "10.0.\($0).5", id: $0) }
            + [Self.probe(7, from: "203.0.113.70", id: 9)]  // s7 never reported its addresses
        #expect(await svc.observe(lies, nowMillis: Self.nowMillis).isEmpty)
        #expect(metrics.value("foreign_destination") == 6)
        #expect(try await store.activeDecisions(now: Self.now).isEmpty)
    }

    @Test func aFloodOfForgedSweepsTripsTheBreaker() async throws {
        var policy = CorrelationPolicy()
        policy.decisionRate = 5
        policy.distributedSources = 0
        let (svc, _, _, metrics, store, dir) = try service(policy: policy)
        defer { try? FileManager.default.removeItem(at: dir) }
        var events: [EventRecord] = []
        for s in 0..<20 { events += (1...5).map { Self.probe($0, from: "203.0.113.\(100 + s)", id: s * 10 + $0) } }
        _ = await svc.observe(events, nowMillis: Self.nowMillis)
        #expect(try await store.activeDecisions(now: Self.now).count == 5)
        #expect(metrics.value("refused_breaker") == 15)
        #expect(await svc.breakerStatus(nowMillis: Self.nowMillis).open)
        #expect(await !svc.breakerStatus(nowMillis: Self.nowMillis + 61_000).open)
    }

    @Test func aNewlyProtectedSessionLiftsTheAutomaticDecisionAtOnce() async throws {
        let (_, engine, registry, _, store, dir) = try service()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try await engine.decide(scope: Self.prefix("198.51.100.0/24"), origin: .correlation, reason: "t", nowMillis: Self.nowMillis)
        _ = try await engine.decide(scope: Self.prefix("198.51.100.10"), origin: .manual, reason: "t", duration: 7200, nowMillis: Self.nowMillis)
        var s1 = Self.report(1)
        s1.sessions = [Self.address("198.51.100.10")]
        let fresh = registry.update(sensor: "s1", report: s1, now: Self.now + 1)
        #expect(try await engine.liftAutomatic(covering: fresh, nowMillis: Self.nowMillis + 1000) == 1)
        let left = try await store.activeDecisions(now: Self.now + 1)
        #expect(left.map(\.scope) == ["198.51.100.10"], "the operator's decision stays")
    }
}
