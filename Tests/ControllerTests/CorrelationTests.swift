@testable import Controller
import Foundation
import PortsentryShared
import Testing
@testable import ControllerCore

/// The correlator's rules, one at a time, with hand-made events.
@Suite struct CorrelationTests {
    static let now: Int64 = 1_764_000_000

    static func event(_ sensor: String, _ source: String, _ destination: String, port: Int, evidence: String = "tripwire",
                      proto: String = "TCP", blocked: Bool? = nil, id: Int = 0) -> EventRecord {
        EventRecord(id: "\(sensor):1:\(id)", sensor: sensor, timeNs: 0, source: source, destination: destination, proto: proto,
                    port: port, type: "syn", evidence: evidence, blocked: blocked, receivedAt: 0)
    }

    @Test func aThinHorizontalSweepIsFoundAtTheFifthHost() {
        let c = FleetCorrelator(policy: CorrelationPolicy())
        for i in 1...4 {
            #expect(c.observe([Self.event("h\(i)", "198.51.100.9", "10.0.0.\(i)", port: 79)], now: Self.now).isEmpty)
        }
        let found = c.observe([Self.event("h5", "198.51.100.9", "10.0.0.5", port: 79)], now: Self.now)
        #expect(found.count == 1)
        #expect(found.first?.scope == IPPrefix(host: IPAddress("198.51.100.9")!))
        #expect(found.first?.reason.hasPrefix("horizontal sweep: 5 hosts") == true)
        #expect(found.first?.events.count == 5)
    }

    @Test func oneSensorAloneNeverDecidesNotEvenByClaimingHandshakes() {
        let c = FleetCorrelator(policy: CorrelationPolicy())
        // One sensor sees probes to five of its addresses: spoofable, uncorroborated.
        let alone = (1...5).map { Self.event("h1", "203.0.113.5", "10.0.0.\($0)", port: 79, id: $0) }
        #expect(c.observe(alone, now: Self.now).isEmpty)
        // One (perhaps compromised) sensor claiming handshakes on 50 hosts: still one sensor.
        let claimed = (1...50).map { Self.event("h1", "203.0.113.6", "10.0.0.\($0)", port: 22, evidence: "handshake", id: $0) }
        #expect(c.observe(claimed, now: Self.now).isEmpty)
        // A second sensor's probe makes the quorum; the handshake marks the finding proven.
        let found = c.observe([Self.event("h2", "203.0.113.6", "10.0.1.1", port: 79)], now: Self.now)
        #expect(found.count == 1 && found.first?.proven == true)
    }

    @Test func aHandshakeWeighsTwiceAProbeAndStealthFindingsAreUnproven() {
        let c = FleetCorrelator(policy: CorrelationPolicy())
        // Three hosts by handshake (6) on two sensors pass the 5-host threshold.
        let shakes = (1...3).map { Self.event("h\($0 % 2)", "203.0.113.20", "10.0.0.\($0)", port: 22, evidence: "handshake", id: $0) }
        #expect(c.observe(shakes, now: Self.now).first?.proven == true)
        let stealth = (1...5).map { Self.event("h\($0)", "203.0.113.21", "10.0.0.\($0)", port: 79, id: $0) }
        let found = c.observe(stealth, now: Self.now)
        #expect(found.count == 1 && found.first?.proven == false)
    }

    @Test func weakerEvidenceCountsLess() {
        let c = FleetCorrelator(policy: CorrelationPolicy())
        // Five hosts by negative replies only count two and a half.
        let weak = (1...5).map { Self.event("h\($0)", "203.0.113.7", "10.0.0.\($0)", port: 1000, evidence: "negative-reply", id: $0) }
        #expect(c.observe(weak, now: Self.now).isEmpty)
        let udp = (6...20).map { Self.event("h\($0)", "203.0.113.8", "10.0.0.\($0)", port: 53, evidence: "udp", proto: "UDP", id: $0) }
        #expect(c.observe(udp, now: Self.now).isEmpty, "15 hosts by UDP alone count 3.75")
        #expect(c.observe((21...30).map { Self.event("h\($0)", "203.0.113.8", "10.0.0.\($0)", port: 53, evidence: "udp", proto: "UDP") },
                          now: Self.now).count == 1, "25 hosts by UDP count 6.25")
    }

    @Test func aVerticalScanSpreadOverHostsIsSummed() {
        let c = FleetCorrelator(policy: CorrelationPolicy())
        // 20 ports, five on each of four hosts: no host saw 20, no sweep of 5 hosts.
        let events = (0..<20).map { Self.event("h\($0 % 4)", "192.0.2.44", "10.0.0.\($0 % 4)", port: 1000 + $0, id: $0) }
        let found = c.observe(events, now: Self.now)
        #expect(found.count == 1)
        #expect(found.first?.reason.hasPrefix("vertical scan across hosts: 20 ports on 4 hosts") == true)
    }

    @Test func aDistributedScanBlocksThePrefix() {
        var policy = CorrelationPolicy()
        policy.distributedSources = 8
        let c = FleetCorrelator(policy: policy)
        // Eight sources in one /24, each touching one host: none is a sweep on its own.
        var found: [Finding] = []
        for s in 1...8 {
            found += c.observe([Self.event("h\(s % 3)", "203.0.113.\(s)", "10.0.0.\(s)", port: 79, id: s)], now: Self.now)
        }
        #expect(found.count == 1)
        #expect(found.first?.scope == (try? IPPrefix(parsing: "203.0.113.0/24")))
    }

    @Test func localBlocksByEnoughSensorsArePromoted() {
        let c = FleetCorrelator(policy: CorrelationPolicy())
        #expect(c.observe([Self.event("h1", "192.0.2.50", "10.0.0.1", port: 79, blocked: true)], now: Self.now).isEmpty)
        let found = c.observe([Self.event("h2", "192.0.2.50", "10.0.0.2", port: 79, blocked: true)], now: Self.now)
        #expect(found.first?.origin == .sensor)
    }

    @Test func theWindowSlidesAndAQuietedSourceIsNotFoundTwice() {
        let c = FleetCorrelator(policy: CorrelationPolicy())
        for i in 1...4 { _ = c.observe([Self.event("h\(i)", "198.51.100.10", "10.0.0.\(i)", port: 79)], now: Self.now) }
        // The fifth host, a window later: the first four have slid out.
        #expect(c.observe([Self.event("h5", "198.51.100.10", "10.0.0.5", port: 79)], now: Self.now + 601).isEmpty)
        let c2 = FleetCorrelator(policy: CorrelationPolicy())
        for i in 1...5 { _ = c2.observe([Self.event("h\(i)", "198.51.100.11", "10.0.0.\(i)", port: 79)], now: Self.now) }
        c2.quiet(IPPrefix(host: IPAddress("198.51.100.11")!), until: Self.now + 3600)
        #expect(c2.observe([Self.event("h6", "198.51.100.11", "10.0.0.6", port: 79)], now: Self.now + 1).isEmpty)
    }

    @Test func aSpoofedFloodStaysBounded() {
        let c = FleetCorrelator(policy: CorrelationPolicy())
        var batch: [EventRecord] = []
        for i in 0..<(FleetCorrelator.maxSources + 5_000) {
            let source = IPAddress(ipv4: 0x0A00_0000 | UInt32(i))
            batch.append(Self.event("h1", source.description, "10.255.0.1", port: 79, id: i))
            if batch.count == 5000 { _ = c.observe(batch, now: Self.now); batch.removeAll() }
        }
        _ = c.observe(batch, now: Self.now)
        #expect(c.trackedSources <= FleetCorrelator.maxSources)
    }
}

/// A restarted controller remembers a sweep in progress: the stored events of the window
/// are replayed into the correlator.
@Suite struct WarmStartTests {
    @Test func aSweepInProgressSurvivesARestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-warm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("c.db").path)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // Five sensors, each with its heartbeat (its own address) stored: their events count.
        for n in 1...5 {
            try await store.addEnrollment(tokenHash: Data([UInt8(n)]), sensor: "h\(n)", expires: now / 1000 + 60, replace: false)
            _ = try await store.enroll(tokenHash: Data([UInt8(n)]), publicKey: Data(count: 32), now: now / 1000, version: "t")
            var report = ProtectionReport()
            report.addresses = [IPAddress("10.0.0.\(n)")!]
            var heartbeat = Heartbeat()
            heartbeat.protection = report
            let status = String(decoding: WireJSON.encode(heartbeat), as: UTF8.self)
            #expect(try await store.heartbeat(sensor: "h\(n)", timestampMillis: now, version: "t", status: status, now: now / 1000))
        }
        var events = (1...4).map { CorrelationTests.event("h\($0)", "198.51.100.20", "10.0.0.\($0)", port: 79, id: $0) }
        for i in events.indices { events[i].receivedAt = now - 5000 }
        #expect(try await store.accept(sensor: "h1", sequence: 1, events: events, now: now / 1000))
        // "Restart": a new service over the same store.
        let fleet = try await FleetServices.make(store: store, signing: try Ed25519.PrivateKey.generate(), policy: CorrelationPolicy(),
                                                 operatorToken: nil, logger: .init(label: "test"), ownAddresses: [])
        let outcomes = await fleet.correlation.observe([CorrelationTests.event("h5", "198.51.100.20", "10.0.0.5", port: 79)], nowMillis: now)
        guard case .decided(let d, _) = outcomes.first else { Issue.record("no decision after the restart: \(outcomes)"); return }
        #expect(d.scope == "198.51.100.20" && d.reason.hasPrefix("horizontal sweep: 5 hosts"))
    }
}

/// Decisions: protection, allowlist, coverage and escalation, on a real SQLite store.
@Suite struct DecisionTests {
    static let nowMillis: Int64 = 1_764_000_000_000

    func engine(protect: [IPPrefix] = []) throws -> (SQLiteStore, DecisionEngine, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-dec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir.appendingPathComponent("c.db").path)
        var policy = CorrelationPolicy()
        policy.protected = protect
        let registry = ProtectedRegistry(configured: protect, own: [IPAddress("10.9.9.9")!])
        var report = ProtectionReport()
        report.addresses = [IPAddress("10.0.0.5")!]
        report.networks = [try IPPrefix(parsing: "10.0.0.0/24")]
        report.gateways = [IPAddress("10.0.0.254")!]
        registry.update(sensor: "h1", report: report, now: Self.nowMillis / 1000)
        return (store, DecisionEngine(store: store, policy: policy, protected: registry, logger: .init(label: "test"), published: nil), dir)
    }

    @Test func protectedAddressesAreNeverBlocked() async throws {
        let (store, e, dir) = try engine(protect: [try IPPrefix(parsing: "192.0.2.0/28")])
        defer { try? FileManager.default.removeItem(at: dir) }
        for scope in ["10.0.0.254", "10.0.0.0/24", "10.9.9.9", "192.0.2.3", "192.0.2.0/24"] {
            let outcome = try await e.decide(scope: try IPPrefix(parsing: scope), origin: .correlation, reason: "t", nowMillis: Self.nowMillis)
            guard case .protected = outcome else { Issue.record("\(scope) was not refused: \(outcome)"); continue }
        }
        #expect(try await store.activeDecisions(now: Self.nowMillis / 1000).isEmpty)
        #expect(try await store.currentRevision().revision == 0)
    }

    @Test func repeatOffendersEscalateAndTheListFollowsUnbanAndAllow() async throws {
        let (store, e, dir) = try engine()
        defer { try? FileManager.default.removeItem(at: dir) }
        let scope = IPAddress("198.51.100.7").map { IPPrefix(host: $0) }!
        guard case .decided(let first, let r1) = try await e.decide(scope: scope, origin: .correlation, reason: "t", nowMillis: Self.nowMillis) else {
            Issue.record("no decision"); return
        }
        #expect(first.expires == Self.nowMillis / 1000 + 3600)
        #expect(r1 == 1)
        guard case .alreadyCovered = try await e.decide(scope: scope, origin: .correlation, reason: "t", nowMillis: Self.nowMillis + 1000) else {
            Issue.record("a covered scope was decided twice"); return
        }
        #expect(try await e.unban(scope: scope, nowMillis: Self.nowMillis + 2000) == 1)
        guard case .decided(let second, _) = try await e.decide(scope: scope, origin: .correlation, reason: "t", nowMillis: Self.nowMillis + 3000) else {
            Issue.record("no second decision"); return
        }
        #expect(second.offense == 2)
        #expect(second.expires == (Self.nowMillis + 3000) / 1000 + 4 * 3600, "the second offence lasts four times as long")
        // Allowlisting lifts it at once and refuses new decisions.
        #expect(try await e.allow(scope: try IPPrefix(parsing: "198.51.100.0/24"), seconds: 0, reason: "partner", nowMillis: Self.nowMillis + 4000) == 1)
        guard case .allowlisted = try await e.decide(scope: scope, origin: .manual, reason: "t", nowMillis: Self.nowMillis + 5000) else {
            Issue.record("an allowlisted scope was decided"); return
        }
        let changes = try await store.changes(after: 0, limit: 100)
        #expect(changes.map(\.expires) == [first.expires, -1, second.expires, -1])
    }

    @Test func deltasSnapshotsAndSignaturesRoundTrip() async throws {
        let (store, e, dir) = try engine()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try Ed25519.PrivateKey.generate()
        let lists = BlockListService(store: store, key: key)
        for i in 1...3 {
            _ = try await e.decide(scope: try IPPrefix(parsing: "203.0.113.\(i)"), origin: .manual, reason: "t", duration: 600,
                                   nowMillis: Self.nowMillis)
        }
        _ = try await e.unban(scope: try IPPrefix(parsing: "203.0.113.2"), nowMillis: Self.nowMillis)
        let snapshot = try #require(try await lists.update(from: 0, to: 4, nowMillis: Self.nowMillis))
        #expect(snapshot.snapshot)
        let full = try BlockListProtocol.open(snapshot.bytes, key: try key.publicKey)
        #expect(Set(full.add.map(\.prefix.description)) == ["203.0.113.1", "203.0.113.3"])
        let delta = try #require(try await lists.update(from: 2, to: 4, nowMillis: Self.nowMillis))
        let d = try BlockListProtocol.open(delta.bytes, key: try key.publicKey)
        #expect(d.base == 2 && d.revision == 4)
        #expect(d.add.map(\.prefix.description) == ["203.0.113.3"] && d.remove.map(\.description) == ["203.0.113.2"])
        // Another key, or one flipped byte, and the sensor refuses it.
        #expect(throws: BlockListProtocol.Refusal.self) { try BlockListProtocol.open(delta.bytes, key: try Ed25519.PrivateKey.generate().publicKey) }
        var tampered = delta.bytes
        tampered[tampered.count - 3] ^= 1
        #expect(throws: BlockListProtocol.Refusal.self) { try BlockListProtocol.open(tampered, key: try key.publicKey) }
        #expect(try await lists.update(from: 4, to: 4, nowMillis: Self.nowMillis) == nil)
    }
}
