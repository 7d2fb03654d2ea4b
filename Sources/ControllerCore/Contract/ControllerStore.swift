package import Foundation
import PortsentryShared

/// The controller's storage, behind one small interface so SQLite (embedded, the default)
/// and PostgreSQL (several replicas on one database) can both serve it.
package protocol ControllerStore: DecisionStore {
    /// Stores a one-time token for `sensor` (replacing any pending one). Only a token made
    /// with `replace` may take over the name of an existing (enrolled or revoked) sensor.
    func addEnrollment(tokenHash: Data, sensor: String, expires: Int64, replace: Bool) async throws
    /// Consumes a one-time token and registers the sensor's key, unless the token is unknown,
    /// used or expired, or the name is taken and the token does not allow replacing it.
    func enroll(tokenHash: Data, publicKey: Data, now: Int64, version: String) async throws -> EnrollOutcome
    func sensor(_ name: String) async throws -> SensorRecord?
    func sensors() async throws -> [SensorRecord]
    func revoke(_ name: String) async throws -> Bool
    /// Stores a verified batch atomically with the new sequence; false when the sequence was
    /// already accepted (a retry: nothing stored, the caller answers success).
    func accept(sensor: String, sequence: Int64, events: [EventRecord], now: Int64) async throws -> Bool
    /// Records a verified heartbeat; false if it is not newer than the last one (a replay).
    func heartbeat(sensor: String, timestampMillis: Int64, version: String, status: String, now: Int64) async throws -> Bool
    func events(since: Int64, limit: Int) async throws -> [EventRecord]
    func eventCount() async throws -> Int
}

/// Storage for decisions, the allowlist and the block list's revision history.
package protocol DecisionStore: Sendable {
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
