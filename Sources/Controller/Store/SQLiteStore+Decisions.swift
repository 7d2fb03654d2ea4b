import Foundation
import GRDB
import PortsentryShared
import ControllerCore

extension SQLiteStore {
    static func registerDecisionMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("v5-no-source-index") { db in
            // Correlation is in memory and no query selects events by source: the index was a
            // B-tree insert per event for nothing.
            try db.execute(sql: "DROP INDEX IF EXISTS events_on_source")
        }
        m.registerMigration("v4-decisions") { db in
            try db.create(table: "decisions") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("scope", .text).notNull().indexed()
                t.column("origin", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("createdMs", .integer).notNull()
                t.column("expires", .integer).notNull()
                t.column("revoked", .boolean).notNull().defaults(to: false)
                t.column("offense", .integer).notNull().defaults(to: 1)
                t.column("events", .text).notNull().defaults(to: "[]")
            }
            try db.create(table: "allowlist") { t in
                t.column("scope", .text).primaryKey()
                t.column("reason", .text).notNull()
                t.column("createdMs", .integer).notNull()
                t.column("expires", .integer).notNull()
            }
            try db.create(table: "list_changes") { t in
                t.autoIncrementedPrimaryKey("revision")
                t.column("scope", .text).notNull()
                t.column("expires", .integer).notNull()
                t.column("createdMs", .integer).notNull()
            }
            try db.alter(table: "sensors") { t in
                t.add(column: "appliedRevision", .integer).notNull().defaults(to: 0)
                t.add(column: "appliedDigest", .text).notNull().defaults(to: "")
                t.add(column: "appliedAt", .integer).notNull().defaults(to: 0)
            }
        }
    }

    func commit(_ write: LedgerWrite) async throws -> (inserted: [DecisionRecord], revision: Int64) {
        try await queue.write { db in
            var inserted: [DecisionRecord] = []
            for var d in write.insert {
                try d.insert(db)
                d.id = db.lastInsertedRowID
                inserted.append(d)
            }
            for id in write.revoke {
                try db.execute(sql: "UPDATE decisions SET revoked = 1 WHERE id = ?", arguments: [id])
            }
            for c in write.changes {
                try db.execute(sql: "INSERT INTO list_changes (scope, expires, createdMs) VALUES (?, ?, ?)",
                               arguments: [c.scope, c.expires, write.createdMs])
            }
            let revision = try Int64.fetchOne(db, sql: "SELECT MAX(revision) FROM list_changes") ?? 0
            return (inserted, revision)
        }
    }

    func activeDecisions(now: Int64) async throws -> [DecisionRecord] {
        try await queue.read { db in
            try DecisionRecord.fetchAll(db, sql: """
                SELECT * FROM decisions WHERE revoked = 0 AND (expires = 0 OR expires > ?) ORDER BY id
                """, arguments: [now])
        }
    }

    func activeDecisions(now: Int64, scopes: [String]) async throws -> [DecisionRecord] {
        try await queue.read { db in
            try DecisionRecord.filter(scopes.contains(Column("scope")) && Column("revoked") == false
                                      && (Column("expires") == 0 || Column("expires") > now)).order(Column("id")).fetchAll(db)
        }
    }

    func recentDecisions(limit: Int) async throws -> [DecisionRecord] {
        try await queue.read { db in
            try DecisionRecord.fetchAll(db, sql: "SELECT * FROM decisions ORDER BY id DESC LIMIT ?", arguments: [limit])
        }
    }

    func decisionCount(scope: String, sinceMs: Int64) async throws -> Int {
        try await queue.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM decisions WHERE scope = ? AND createdMs >= ?",
                             arguments: [scope, sinceMs]) ?? 0
        }
    }

    func changes(after revision: Int64, limit: Int) async throws -> [ListChange] {
        try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT revision, scope, expires, createdMs FROM list_changes WHERE revision > ? ORDER BY revision LIMIT ?",
                             arguments: [revision, limit]).map {
                ListChange(revision: $0["revision"], scope: $0["scope"], expires: $0["expires"], createdMs: $0["createdMs"])
            }
        }
    }

    func currentRevision() async throws -> (revision: Int64, createdMs: Int64) {
        try await queue.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT revision, createdMs FROM list_changes ORDER BY revision DESC LIMIT 1") else {
                return (0, 0)
            }
            return (row["revision"], row["createdMs"])
        }
    }

    func revisionTime(_ revision: Int64) async throws -> Int64? {
        try await queue.read { db in
            try Int64.fetchOne(db, sql: "SELECT createdMs FROM list_changes WHERE revision = ?", arguments: [revision])
        }
    }

    func addAllow(_ allow: AllowRecord) async throws {
        try await queue.write { db in try allow.save(db) }
    }

    func removeAllow(scope: String) async throws -> Bool {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM allowlist WHERE scope = ?", arguments: [scope])
            return db.changesCount > 0
        }
    }

    func allows(now: Int64) async throws -> [AllowRecord] {
        try await queue.read { db in
            try AllowRecord.fetchAll(db, sql: "SELECT * FROM allowlist WHERE expires = 0 OR expires > ? ORDER BY scope", arguments: [now])
        }
    }

    func recordApplied(sensor: String, revision: Int64, digest: String, atMs: Int64) async throws {
        try await queue.write { db in
            try db.execute(sql: "UPDATE sensors SET appliedRevision = ?, appliedDigest = ?, appliedAt = ? WHERE name = ?",
                           arguments: [revision, digest, atMs, sensor])
        }
    }

    func prune(_ cutoff: Retention.Cutoffs) async throws -> Retention.Pruned {
        var pruned = Retention.Pruned()
        // In batches: each a short transaction, so ingest's group commits interleave.
        while true {
            let n = try await queue.write { db -> Int in
                try db.execute(sql: "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE receivedAt < ? LIMIT ?)",
                               arguments: [cutoff.eventsBeforeMs, Retention.batch])
                return db.changesCount
            }
            pruned.events += n
            if n < Retention.batch { break }
        }
        pruned.changes = try await queue.write { db -> Int in
            try db.execute(sql: """
                DELETE FROM list_changes WHERE createdMs < ? AND revision < (SELECT MAX(revision) FROM list_changes)
                """, arguments: [cutoff.changesBeforeMs])
            return db.changesCount
        }
        pruned.decisions = try await queue.write { db -> Int in
            try db.execute(sql: """
                DELETE FROM decisions WHERE (expires != 0 AND expires < ?) OR (revoked AND createdMs < ?)
                """, arguments: [cutoff.decisionsEndedBefore, cutoff.decisionsEndedBefore * 1000])
            return db.changesCount
        }
        return pruned
    }

    func oldestChange() async throws -> Int64? {
        try await queue.read { db in try Int64.fetchOne(db, sql: "SELECT MIN(revision) FROM list_changes") }
    }
}
