@testable import Controller
import Foundation
import Logging
import PortsentryShared
import Testing
@testable import ControllerCore

/// Retention on both stores: old events, changes and ended decisions go, the newest change
/// (the current revision) and everything recent stay, and a sensor whose base was pruned gets
/// a snapshot instead of an incomplete delta.
@Suite struct RetentionTests {
    @Test(arguments: IngestTests.backends) func oldRowsGoTheCurrentRevisionStays(backend: String) async throws {
        let f = try await IngestTests.Fixture(backend)
        let store = f.store
        let day: Int64 = 86_400_000
        let now = IngestTests.now
        try await store.addEnrollment(tokenHash: Data([9]), sensor: "r1", expires: now / 1000 + 60, replace: false)
        _ = try await store.enroll(tokenHash: Data([9]), publicKey: Data(count: 32), now: now / 1000, version: "t")
        func event(_ i: Int, receivedAt: Int64) -> EventRecord {
            EventRecord(id: "r1:\(i):0", sensor: "r1", timeNs: 0, source: "203.0.113.1", destination: "10.0.0.1", proto: "TCP",
                        port: 79, type: "syn", evidence: "tripwire", blocked: nil, receivedAt: receivedAt)
        }
        #expect(try await store.accept(sensor: "r1", sequence: 1, events: (0..<30).map { event($0, receivedAt: now - 40 * day) }, now: now / 1000))
        #expect(try await store.accept(sensor: "r1", sequence: 2, events: (30..<35).map { event($0, receivedAt: now - day) }, now: now / 1000))
        // Three revisions long ago, one recent; a decision that ended long ago, one active.
        let old = DecisionRecord(id: nil, scope: "198.51.100.1", origin: .manual, reason: "t", createdMs: now - 400 * day,
                                 expires: (now - 399 * day) / 1000, revoked: false, offense: 1, events: "[]")
        _ = try await store.commit(LedgerWrite(insert: [old], changes: [("198.51.100.1", old.expires)], createdMs: now - 400 * day))
        _ = try await store.commit(LedgerWrite(changes: [("198.51.100.2", 0), ("198.51.100.1", -1)], createdMs: now - 20 * day))
        let active = DecisionRecord(id: nil, scope: "198.51.100.3", origin: .manual, reason: "t", createdMs: now - day,
                                    expires: 0, revoked: false, offense: 1, events: "[]")
        _ = try await store.commit(LedgerWrite(insert: [active], changes: [("198.51.100.3", 0)], createdMs: now - day))
        let (current, _) = try await store.currentRevision()

        let service = RetentionService(store: store, events: 30 * 86_400, changes: 7 * 86_400, decisions: 365 * 86_400,
                                       metrics: FleetMetrics(), logger: Logger(label: "t"))
        let pruned = try await service.runOnce(nowMillis: now)
        #expect(pruned == Retention.Pruned(events: 30, changes: 3, decisions: 1), "\(pruned)")
        #expect(try await store.eventCount() == 5)
        #expect(try await store.currentRevision().revision == current)
        #expect(try await store.recentDecisions(limit: 10).map(\.scope) == ["198.51.100.3"])
        // Everything pruned again: the newest change stays, so revisions never go back.
        _ = try await service.runOnce(nowMillis: now + 100 * day)
        #expect(try await store.currentRevision().revision == current)
        // A sensor at revision 1 (pruned since) gets a snapshot, not a delta missing changes.
        let update = try #require(try await f.fleet.lists.update(from: 1, to: current, nowMillis: now))
        #expect(update.snapshot)
    }

    @Test func decisionRetentionMustCoverOffenseMemory() {
        #expect(throws: ControllerConfig.Failure.self) {
            try ControllerConfig.parse("OFFENSE_MEMORY = 60d\nDECISION_RETENTION = 30d\n", file: "c.conf")
        }
        #expect(throws: ControllerConfig.Failure.self) { try ControllerConfig.parse("EVENT_RETENTION = 10m\n", file: "c.conf") }
    }
}
