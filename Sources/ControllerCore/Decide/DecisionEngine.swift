import Foundation
package import Logging
package import PortsentryShared

/// Turns findings and operator commands into decisions, and decisions into block-list
/// revisions. Every path runs the same checks: never an allowlisted scope, no second decision
/// for a scope an active one already covers; repeat offenders get escalating durations.
///
/// Protection differs by who asks. Automatic decisions (correlation, promoted local blocks)
/// never cover anything in the protected registry; when they rest on stealth probes alone
/// (anyone can forge those), they are short, never escalate, and are not taken against an
/// address that completed real connections with the fleet. An operator's decision is only
/// refused by the controller's own config and addresses: what sensors claim is shown to the
/// operator as an overlap, never a veto (a compromised sensor must not shield an attacker
/// from the people running the fleet).
package struct DecisionEngine: Sendable {
    package let store: any ControllerStore
    package let policy: CorrelationPolicy
    package let protected: ProtectedRegistry
    package let logger: Logger
    /// Told of every new revision (wakes the sensors' long polls); nil in the CLI.
    package let published: (@Sendable (Int64) async -> Void)?

    package enum Outcome: Equatable, Sendable {
        case decided(DecisionRecord, revision: Int64)
        case protected(String)
        case allowlisted(String)
        /// Stealth evidence only, against an address that completed real connections with the fleet.
        case knownPeer(String)
        case alreadyCovered(DecisionRecord)
    }

    /// Blocks `scope`. `duration` nil uses the policy (with escalation); 0 is until unbanned.
    /// `proven` false: the evidence is stealth probes only (see the type's comment).
    package func decide(scope: IPPrefix, origin: DecisionRecord.Origin, reason: String, events: [String] = [],
                duration: Int64? = nil, proven: Bool = true, nowMillis: Int64) async throws -> Outcome {
        let now = nowMillis / 1000
        let automatic = origin != .manual
        if automatic {
            if let why = protected.protection(covering: scope, now: now) { return .protected(why) }
            if !proven, protected.isKnownPeer(scope, now: now) {
                return .knownPeer("\(scope) completed real TCP connections with fleet members in the last \(policy.peerMemory) s, "
                                  + "and the evidence is stealth probes only")
            }
        } else if let why = protected.operatorProtection(covering: scope) {
            return .protected(why)
        }
        if let allow = try await store.allows(now: now).first(where: { $0.prefix?.overlaps(scope) ?? false }) {
            return .allowlisted("\(allow.scope) is allowlisted (\(allow.reason))")
        }
        // Only decisions on this scope or a prefix containing it matter here.
        let active = try await store.activeDecisions(now: now, scopes: scope.coveringScopes)
        let offense = try await store.decisionCount(scope: scope.description, sinceMs: nowMillis - policy.offenseMemory * 1000) + 1
        // Stealth-only evidence: short and never escalated (the "offender" may be a victim of forgery).
        let seconds = duration ?? (automatic && !proven ? policy.stealthDuration : policy.duration(offense: offense))
        let expires = seconds == 0 ? 0 : now + seconds
        if let covering = active.first(where: { d in
            guard let p = d.prefix, p.contains(scope.network), p.length <= scope.length else { return false }
            // A finding about a source already blocked changes nothing (and is no new
            // offence); an operator may still lengthen a block.
            return origin != .manual || d.expires == 0 || (expires != 0 && d.expires >= expires)
        }) {
            return .alreadyCovered(covering)
        }
        let evidence = DecisionRecord.evidenceColumn(events)
        let record = DecisionRecord(id: nil, scope: scope.description, origin: origin, reason: String(reason.prefix(500)),
                                    createdMs: nowMillis, expires: expires, revoked: false, offense: offense, events: evidence)
        // The scope's entry lasts as long as its longest active decision.
        let sameScope = active.filter { $0.scope == record.scope } + [record]
        let entry = sameScope.contains { $0.expires == 0 } ? 0 : sameScope.map(\.expires).max()!
        let (inserted, revision) = try await store.commit(LedgerWrite(insert: [record], changes: [(record.scope, entry)],
                                                                      createdMs: nowMillis))
        let decided = inserted.first ?? record
        if !automatic {
            for claim in protected.claims(overlapping: scope, now: now).prefix(5) {
                logger.warning("Operator decision on \(scope) overlaps \(ProtectedRegistry.describe(claim)); that sensor will not enforce it on itself")
            }
        }
        logger.notice("Decision \(decided.id ?? 0): block \(scope) \(seconds == 0 ? "until unbanned" : "for \(seconds) s") (offence \(offense), \(origin.rawValue)): \(reason) [revision \(revision)]")
        await published?(revision)
        return .decided(decided, revision: revision)
    }

    /// Lifts every active decision overlapping `scope`; returns how many.
    @discardableResult
    package func unban(scope: IPPrefix, nowMillis: Int64, why: String = "unbanned") async throws -> Int {
        let now = nowMillis / 1000
        let active = try await store.activeDecisions(now: now)
        let lifted = active.filter { $0.prefix?.overlaps(scope) ?? false }
        guard !lifted.isEmpty else { return 0 }
        let liftedIDs = Set(lifted.compactMap(\.id))
        var changes: [(scope: String, expires: Int64)] = []
        for affected in Set(lifted.map(\.scope)).sorted() {
            let remaining = active.filter { $0.scope == affected && !liftedIDs.contains($0.id ?? -1) }
            let entry: Int64 = remaining.isEmpty ? -1 : (remaining.contains { $0.expires == 0 } ? 0 : remaining.map(\.expires).max()!)
            changes.append((affected, entry))
        }
        let (_, revision) = try await store.commit(LedgerWrite(revoke: Array(liftedIDs).sorted(), changes: changes, createdMs: nowMillis))
        logger.notice("\(why): lifted \(lifted.count) decision(s) overlapping \(scope) [revision \(revision)]")
        await published?(revision)
        return lifted.count
    }

    /// Lifts at once every automatic decision that covers a newly protected claim (an admin
    /// session that just started, a sensor that came up with a new address). Operator
    /// decisions stay: sensors' claims never veto an operator.
    @discardableResult
    package func liftAutomatic(covering claims: [ProtectedRegistry.Claim], nowMillis: Int64) async throws -> Int {
        guard !claims.isEmpty else { return 0 }
        let now = nowMillis / 1000
        var active = try await store.activeDecisions(now: now)
        var lifted = 0
        for d in active where d.origin != .manual {
            guard let p = d.prefix, let claim = claims.first(where: { $0.prefix.overlaps(p) }) else { continue }
            lifted += try await liftOne(d, active: active, nowMillis: nowMillis,
                                        why: "\(ProtectedRegistry.describe(claim)) (newly protected)")
            active.removeAll { $0.id == d.id }
        }
        return lifted
    }

    private func liftOne(_ d: DecisionRecord, active: [DecisionRecord], nowMillis: Int64, why: String) async throws -> Int {
        guard let id = d.id else { return 0 }
        let remaining = active.filter { $0.scope == d.scope && $0.id != id }
        let entry: Int64 = remaining.isEmpty ? -1 : (remaining.contains { $0.expires == 0 } ? 0 : remaining.map(\.expires).max()!)
        let (_, revision) = try await store.commit(LedgerWrite(revoke: [id], changes: [(d.scope, entry)], createdMs: nowMillis))
        logger.warning("Lifted decision \(id) on \(d.scope): \(why) [revision \(revision)]")
        await published?(revision)
        return 1
    }

    /// Allowlists `scope` (`seconds` 0: until removed) and at once lifts every decision on it.
    package func allow(scope: IPPrefix, seconds: Int64, reason: String, nowMillis: Int64) async throws -> Int {
        try await store.addAllow(AllowRecord(scope: scope.description, reason: String(reason.prefix(500)), createdMs: nowMillis,
                                             expires: seconds == 0 ? 0 : nowMillis / 1000 + seconds))
        return try await unban(scope: scope, nowMillis: nowMillis, why: "allowlisted \(scope)")
    }

    package init(store: any ControllerStore, policy: CorrelationPolicy, protected: ProtectedRegistry, logger: Logger, published: (@Sendable (Int64) async -> Void)?) {
        self.store = store
        self.policy = policy
        self.protected = protected
        self.logger = logger
        self.published = published
    }
}
