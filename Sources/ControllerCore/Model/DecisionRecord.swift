package import PortsentryShared

/// A decision to block a scope (an address or a prefix) fleet-wide.
package struct DecisionRecord: Codable, Equatable, Sendable {
    package typealias Origin = DecisionOrigin
    package var id: Int64?
    /// An address or prefix, in `IPPrefix` text form.
    package var scope: String
    package var origin: DecisionOrigin
    package var reason: String
    package var createdMs: Int64
    /// Epoch seconds; 0 means until unbanned.
    package var expires: Int64
    package var revoked: Bool
    /// 1 for a first offence; escalation multiplies the duration for repeat offenders.
    package var offense: Int
    /// Ids of (at most `maxEvidence`) events behind the decision, as a JSON array.
    package var events: String

    /// Event ids kept with a decision: enough to explain it, bounded so a flood cannot bloat it.
    package static let maxEvidence = 50

    package var prefix: IPPrefix? { try? IPPrefix(parsing: scope) }
    /// `events` read back (an unreadable column reads as none).
    package var evidenceIDs: [String] { (try? WireJSON.decode([String].self, from: Array(events.utf8))) ?? [] }
    /// The `events` column for these ids.
    package static func evidenceColumn(_ ids: [String]) -> String {
        String(decoding: WireJSON.encode(Array(ids.prefix(maxEvidence))), as: UTF8.self)
    }
    package func isActive(at now: Int64) -> Bool { !revoked && (expires == 0 || expires > now) }

    package init(id: Int64?, scope: String, origin: DecisionOrigin, reason: String, createdMs: Int64, expires: Int64, revoked: Bool, offense: Int, events: String) {
        self.id = id
        self.scope = scope
        self.origin = origin
        self.reason = reason
        self.createdMs = createdMs
        self.expires = expires
        self.revoked = revoked
        self.offense = offense
        self.events = events
    }
}

/// An allowlisted scope: never blocked fleet-wide while the entry lasts.
package struct AllowRecord: Codable, Equatable, Sendable {
    package var scope: String
    package var reason: String
    package var createdMs: Int64
    /// Epoch seconds; 0 means until removed.
    package var expires: Int64

    package var prefix: IPPrefix? { try? IPPrefix(parsing: scope) }

    package init(scope: String, reason: String, createdMs: Int64, expires: Int64) {
        self.scope = scope
        self.reason = reason
        self.createdMs = createdMs
        self.expires = expires
    }
}

/// One step of the block list's history: the state of one scope from `revision` on
/// (`expires` -1 means removed).
package struct ListChange: Equatable, Sendable {
    package var revision: Int64
    package var scope: String
    package var expires: Int64
    package var createdMs: Int64

    package init(revision: Int64, scope: String, expires: Int64, createdMs: Int64) {
        self.revision = revision
        self.scope = scope
        self.expires = expires
        self.createdMs = createdMs
    }
}

/// One atomic change of the decision set and of the block-list entries it implies.
package struct LedgerWrite: Sendable {
    package var insert: [DecisionRecord] = []
    package var revoke: [Int64] = []
    /// New state per scope (-1 removed), each becoming one revision.
    package var changes: [(scope: String, expires: Int64)] = []
    package var createdMs: Int64

    package var isEmpty: Bool { insert.isEmpty && revoke.isEmpty && changes.isEmpty }

    package init(insert: [DecisionRecord] = [], revoke: [Int64] = [], changes: [(scope: String, expires: Int64)] = [], createdMs: Int64) {
        self.insert = insert
        self.revoke = revoke
        self.changes = changes
        self.createdMs = createdMs
    }
}
