import Foundation
import GRDB
import PortsentryShared

/// A decision to block a scope (an address or a prefix) fleet-wide.
struct DecisionRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    static let databaseTableName = "decisions"
    enum Origin: String, Codable, Sendable, CaseIterable {
        /// A sensor blocked locally and the promotion policy carried it fleet-wide.
        case sensor
        /// The controller's cross-host correlation.
        case correlation
        /// An operator (`portsentry-controller ban`, `POST /v1/decisions`).
        case manual
    }

    var id: Int64?
    /// An address or prefix, in `IPPrefix` text form.
    var scope: String
    var origin: String
    var reason: String
    var createdMs: Int64
    /// Epoch seconds; 0 means until unbanned.
    var expires: Int64
    var revoked: Bool
    /// 1 for a first offence; escalation multiplies the duration for repeat offenders.
    var offense: Int
    /// Ids of (at most `maxEvidence`) events behind the decision, as a JSON array.
    var events: String

    /// Event ids kept with a decision: enough to explain it, bounded so a flood cannot bloat it.
    static let maxEvidence = 50

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    var prefix: IPPrefix? { try? IPPrefix(parsing: scope) }
    func isActive(at now: Int64) -> Bool { !revoked && (expires == 0 || expires > now) }
}

/// An allowlisted scope: never blocked fleet-wide while the entry lasts.
struct AllowRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    static let databaseTableName = "allowlist"
    var scope: String
    var reason: String
    var createdMs: Int64
    /// Epoch seconds; 0 means until removed.
    var expires: Int64

    var prefix: IPPrefix? { try? IPPrefix(parsing: scope) }
}

/// One step of the block list's history: the state of one scope from `revision` on
/// (`expires` -1 means removed).
struct ListChange: Equatable, Sendable {
    var revision: Int64
    var scope: String
    var expires: Int64
    var createdMs: Int64
}

/// One atomic change of the decision set and of the block-list entries it implies.
struct LedgerWrite: Sendable {
    var insert: [DecisionRecord] = []
    var revoke: [Int64] = []
    /// New state per scope (-1 removed), each becoming one revision.
    var changes: [(scope: String, expires: Int64)] = []
    var createdMs: Int64

    var isEmpty: Bool { insert.isEmpty && revoke.isEmpty && changes.isEmpty }
}

/// Storage for decisions, the allowlist and the block list's revision history.
protocol DecisionStore: Sendable {
    /// Applies `write` in one transaction; returns the inserted decisions (with ids) and the
    /// newest revision afterwards.
    func commit(_ write: LedgerWrite) async throws -> (inserted: [DecisionRecord], revision: Int64)
    /// Decisions in force at `now` (epoch seconds).
    func activeDecisions(now: Int64) async throws -> [DecisionRecord]
    /// Decisions in force at `now` on exactly these scopes (an index lookup, not a scan).
    func activeDecisions(now: Int64, scopes: [String]) async throws -> [DecisionRecord]
    /// The newest decisions, active or not, newest first.
    func recentDecisions(limit: Int) async throws -> [DecisionRecord]
    /// Decisions on exactly `scope` created since `sinceMs` (repeat offences).
    func decisionCount(scope: String, sinceMs: Int64) async throws -> Int
    /// Changes after `revision`, oldest first, at most `limit`.
    func changes(after revision: Int64, limit: Int) async throws -> [ListChange]
    /// The newest revision and when it was made (0, 0 for an empty history).
    func currentRevision() async throws -> (revision: Int64, createdMs: Int64)
    func revisionTime(_ revision: Int64) async throws -> Int64?
    func addAllow(_ allow: AllowRecord) async throws
    func removeAllow(scope: String) async throws -> Bool
    func allows(now: Int64) async throws -> [AllowRecord]
    /// What a sensor last reported about its block list.
    func recordApplied(sensor: String, revision: Int64, digest: String, atMs: Int64) async throws
    /// Deletes what retention no longer keeps (see `Retention`); never the newest list change,
    /// which carries the current revision.
    func prune(_ cutoff: Retention.Cutoffs) async throws -> Retention.Pruned
    /// The oldest revision whose change is still held (nil: none): a sensor at a base older
    /// than this minus one needs a snapshot, as the changes in between are gone.
    func oldestChange() async throws -> Int64?
}

/// How long the controller keeps what grows with time.
enum Retention {
    struct Cutoffs: Sendable {
        /// Events received before this (epoch ms).
        var eventsBeforeMs: Int64
        /// List changes made before this (epoch ms).
        var changesBeforeMs: Int64
        /// Decisions that ended (expired, or were revoked) before this (epoch seconds; a
        /// revoked decision counts from its creation).
        var decisionsEndedBefore: Int64
    }

    struct Pruned: Sendable, Equatable {
        var events = 0
        var changes = 0
        var decisions = 0
    }

    /// Rows deleted per statement: short write transactions, so ingest never waits long.
    static let batch = 10_000
}

extension IPPrefix {
    /// This prefix and every shorter one containing it, as scope strings: the only scopes
    /// whose decisions can cover it.
    var coveringScopes: [String] {
        let maxLength = network.isIPv4 ? 32 : 128
        return (0...min(length, maxLength)).map { IPPrefix(network, length: $0).description }
    }
}
