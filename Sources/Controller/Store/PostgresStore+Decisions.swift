import Foundation
import PostgresNIO
import ControllerCore
import PortsentryShared

extension PostgresStore {
    static let decisionSchema = [
        """
        CREATE TABLE IF NOT EXISTS decisions (id bigserial PRIMARY KEY, scope text NOT NULL, origin text NOT NULL,
            reason text NOT NULL, created_ms bigint NOT NULL, expires bigint NOT NULL, revoked boolean NOT NULL DEFAULT false,
            offense bigint NOT NULL DEFAULT 1, events text NOT NULL DEFAULT '[]')
        """,
        "CREATE INDEX IF NOT EXISTS decisions_scope ON decisions (scope)",
        "CREATE TABLE IF NOT EXISTS allowlist (scope text PRIMARY KEY, reason text NOT NULL, created_ms bigint NOT NULL, expires bigint NOT NULL)",
        "CREATE TABLE IF NOT EXISTS list_changes (revision bigserial PRIMARY KEY, scope text NOT NULL, expires bigint NOT NULL, created_ms bigint NOT NULL)",
        "ALTER TABLE sensors ADD COLUMN IF NOT EXISTS applied_revision bigint NOT NULL DEFAULT 0",
        "ALTER TABLE sensors ADD COLUMN IF NOT EXISTS applied_digest text NOT NULL DEFAULT ''",
        "ALTER TABLE sensors ADD COLUMN IF NOT EXISTS applied_at bigint NOT NULL DEFAULT 0",
    ]

    private static let decisionColumns = "id, scope, origin, reason, created_ms, expires, revoked, offense, events"

    private func decisions(_ query: PostgresQuery) async throws -> [DecisionRecord] {
        var out: [DecisionRecord] = []
        for try await (id, scope, origin, reason, created, expires, revoked, offense, events)
            in try await client.query(query, logger: logger).decode((Int64, String, String, String, Int64, Int64, Bool, Int64, String).self) {
            // An origin this version does not know (a newer replica's) reads as manual: an
            // operator's decisions are never lifted by automatic policy.
            out.append(DecisionRecord(id: id, scope: scope, origin: DecisionOrigin(rawValue: origin) ?? .manual, reason: reason, createdMs: created, expires: expires,
                                      revoked: revoked, offense: Int(offense), events: events))
        }
        return out
    }

    func commit(_ write: LedgerWrite) async throws -> (inserted: [DecisionRecord], revision: Int64) {
        try await client.withTransaction(logger: logger) { c in
            var inserted: [DecisionRecord] = []
            for var d in write.insert {
                let rows = try await c.query("""
                    INSERT INTO decisions (scope, origin, reason, created_ms, expires, revoked, offense, events)
                    VALUES (\(d.scope), \(d.origin.rawValue), \(d.reason), \(d.createdMs), \(d.expires), \(d.revoked), \(Int64(d.offense)), \(d.events))
                    RETURNING id
                    """, logger: logger)
                for try await id in rows.decode(Int64.self) { d.id = id }
                inserted.append(d)
            }
            for id in write.revoke {
                try await c.query("UPDATE decisions SET revoked = true WHERE id = \(id)", logger: logger)
            }
            for change in write.changes {
                try await c.query("INSERT INTO list_changes (scope, expires, created_ms) VALUES (\(change.scope), \(change.expires), \(write.createdMs))",
                                  logger: logger)
            }
            var revision: Int64 = 0
            for try await r in try await c.query("SELECT COALESCE(MAX(revision), 0)::bigint FROM list_changes", logger: logger)
                .decode(Int64.self) { revision = r }
            return (inserted, revision)
        }
    }

    func activeDecisions(now: Int64) async throws -> [DecisionRecord] {
        try await decisions("""
            SELECT id, scope, origin, reason, created_ms, expires, revoked, offense, events FROM decisions
            WHERE NOT revoked AND (expires = 0 OR expires > \(now)) ORDER BY id
            """)
    }

    func activeDecisions(now: Int64, scopes: [String]) async throws -> [DecisionRecord] {
        try await decisions("""
            SELECT id, scope, origin, reason, created_ms, expires, revoked, offense, events FROM decisions
            WHERE scope = ANY(\(scopes)::text[]) AND NOT revoked AND (expires = 0 OR expires > \(now)) ORDER BY id
            """)
    }

    func recentDecisions(limit: Int) async throws -> [DecisionRecord] {
        try await decisions("""
            SELECT id, scope, origin, reason, created_ms, expires, revoked, offense, events FROM decisions
            ORDER BY id DESC LIMIT \(Int64(limit))
            """)
    }

    func decisionCount(scope: String, sinceMs: Int64) async throws -> Int {
        var n: Int64 = 0
        for try await v in try await client.query("SELECT count(*) FROM decisions WHERE scope = \(scope) AND created_ms >= \(sinceMs)",
                                                   logger: logger).decode(Int64.self) { n = v }
        return Int(n)
    }

    func changes(after revision: Int64, limit: Int) async throws -> [ListChange] {
        var out: [ListChange] = []
        for try await (r, scope, expires, created) in try await client.query("""
            SELECT revision, scope, expires, created_ms FROM list_changes WHERE revision > \(revision) ORDER BY revision LIMIT \(Int64(limit))
            """, logger: logger).decode((Int64, String, Int64, Int64).self) {
            out.append(ListChange(revision: r, scope: scope, expires: expires, createdMs: created))
        }
        return out
    }

    func currentRevision() async throws -> (revision: Int64, createdMs: Int64) {
        var out: (Int64, Int64) = (0, 0)
        for try await row in try await client.query("SELECT revision, created_ms FROM list_changes ORDER BY revision DESC LIMIT 1",
                                                     logger: logger).decode((Int64, Int64).self) { out = row }
        return (out.0, out.1)
    }

    func revisionTime(_ revision: Int64) async throws -> Int64? {
        var out: Int64? = nil
        for try await v in try await client.query("SELECT created_ms FROM list_changes WHERE revision = \(revision)", logger: logger)
            .decode(Int64.self) { out = v }
        return out
    }

    func addAllow(_ allow: AllowRecord) async throws {
        try await client.query("""
            INSERT INTO allowlist (scope, reason, created_ms, expires) VALUES (\(allow.scope), \(allow.reason), \(allow.createdMs), \(allow.expires))
            ON CONFLICT (scope) DO UPDATE SET reason = EXCLUDED.reason, created_ms = EXCLUDED.created_ms, expires = EXCLUDED.expires
            """, logger: logger)
    }

    func removeAllow(scope: String) async throws -> Bool {
        var any = false
        for try await _ in try await client.query("DELETE FROM allowlist WHERE scope = \(scope) RETURNING scope", logger: logger)
            .decode(String.self) { any = true }
        return any
    }

    func allows(now: Int64) async throws -> [AllowRecord] {
        var out: [AllowRecord] = []
        for try await (scope, reason, created, expires) in try await client.query("""
            SELECT scope, reason, created_ms, expires FROM allowlist WHERE expires = 0 OR expires > \(now) ORDER BY scope
            """, logger: logger).decode((String, String, Int64, Int64).self) {
            out.append(AllowRecord(scope: scope, reason: reason, createdMs: created, expires: expires))
        }
        return out
    }

    func recordApplied(sensor: String, revision: Int64, digest: String, atMs: Int64) async throws {
        try await client.query("""
            UPDATE sensors SET applied_revision = \(revision), applied_digest = \(digest), applied_at = \(atMs) WHERE name = \(sensor)
            """, logger: logger)
    }

    func prune(_ cutoff: Retention.Cutoffs) async throws -> Retention.Pruned {
        var pruned = Retention.Pruned()
        while true {
            var n = 0
            let rows = try await client.query("""
                WITH gone AS (DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE received_at < \(cutoff.eventsBeforeMs)
                    LIMIT \(Retention.batch)) RETURNING 1) SELECT count(*) FROM gone
                """, logger: logger)
            for try await c in rows.decode(Int64.self) { n = Int(c) }
            pruned.events += n
            if n < Retention.batch { break }
        }
        let changes = try await client.query("""
            WITH gone AS (DELETE FROM list_changes WHERE created_ms < \(cutoff.changesBeforeMs)
                AND revision < (SELECT MAX(revision) FROM list_changes) RETURNING 1) SELECT count(*) FROM gone
            """, logger: logger)
        for try await c in changes.decode(Int64.self) { pruned.changes = Int(c) }
        let decisions = try await client.query("""
            WITH gone AS (DELETE FROM decisions WHERE (expires != 0 AND expires < \(cutoff.decisionsEndedBefore))
                OR (revoked AND created_ms < \(cutoff.decisionsEndedBefore * 1000)) RETURNING 1) SELECT count(*) FROM gone
            """, logger: logger)
        for try await c in decisions.decode(Int64.self) { pruned.decisions = Int(c) }
        return pruned
    }

    func oldestChange() async throws -> Int64? {
        var oldest: Int64? = nil
        for try await v in try await client.query("SELECT MIN(revision) FROM list_changes", logger: logger).decode(Int64?.self) { oldest = v }
        return oldest
    }
}
