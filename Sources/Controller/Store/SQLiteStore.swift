import Foundation
import GRDB
import PortsentryShared
import ControllerCore

// GRDB's record conformances: the models in ControllerCore know nothing of the database.
extension SensorRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "sensors"
}

extension EventRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "events"
}

extension DecisionRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "decisions"
    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension AllowRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "allowlist"
}

/// SQLite through GRDB, in WAL mode with full fsync on commit: a batch the controller has
/// acknowledged survives a SIGKILL the next instant.
final class SQLiteStore: ControllerStore {
    let queue: DatabaseQueue
    private let commits = CommitQueue()

    struct NotOurs: Error, CustomStringConvertible {
        let description: String
    }

    /// Opens the database at `path`. With `create` false (everything but `init`), a file that is
    /// empty or holds no controller schema is refused: starting on it as a fresh database would
    /// forget every sensor, and the sensors would be refused as unknown.
    init(path: String, create: Bool = true) throws {
        if !create {
            var st = stat()
            guard stat(path, &st) == 0 else { throw NotOurs(description: "\(path) does not exist: run `portsentry-controller init` first") }
            guard st.st_size > 0 else {
                throw NotOurs(description: "\(path) is empty (0 bytes), not a controller database: restore it from a backup, or move it aside and run `portsentry-controller init` (every sensor must then enroll again)")
            }
        }
        var config = Configuration()
        // The CLI (ban, allow, sensors add) writes while the service runs.
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Index pages stay in memory instead of being re-read for every insert
            // (pread was 8% of the ingest profile with the 2 MiB default).
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        queue = try DatabaseQueue(path: path, configuration: config)
        if !create {
            let ours = try queue.read { db in try db.tableExists("grdb_migrations") && db.tableExists("sensors") }
            guard ours else {
                throw NotOurs(description: "\(path) is a SQLite database but not a controller's (no controller tables): refusing to turn it into one")
            }
        }
        try Self.migrator.migrate(queue)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.create(table: "sensors") { t in
                t.column("name", .text).primaryKey()
                t.column("publicKey", .blob).notNull()
                t.column("enrolledAt", .integer).notNull()
                t.column("revoked", .boolean).notNull().defaults(to: false)
                t.column("lastSequence", .integer).notNull().defaults(to: 0)
                t.column("lastSeen", .integer).notNull().defaults(to: 0)
                t.column("version", .text).notNull().defaults(to: "")
            }
            try db.create(table: "enrollments") { t in
                t.column("tokenHash", .blob).primaryKey()
                t.column("sensor", .text).notNull()
                t.column("expires", .integer).notNull()
            }
            try db.create(table: "events") { t in
                t.column("id", .text).primaryKey()
                t.column("sensor", .text).notNull().indexed()
                t.column("timeNs", .integer).notNull()
                t.column("source", .text).notNull().indexed()
                t.column("destination", .text).notNull()
                t.column("proto", .text).notNull()
                t.column("port", .integer).notNull()
                t.column("type", .text).notNull()
                t.column("evidence", .text).notNull()
                t.column("blocked", .boolean)
                t.column("receivedAt", .integer).notNull().indexed()
            }
        }
        m.registerMigration("v2-heartbeats") { db in
            try db.alter(table: "sensors") { t in
                t.add(column: "lastHeartbeat", .integer).notNull().defaults(to: 0)
                t.add(column: "status", .text).notNull().defaults(to: "")
            }
        }
        m.registerMigration("v3-events-rowid") { db in
            // Exactly-once is the sequence check in the accepting transaction; a unique text
            // key and a per-sensor index on top only cost two more B-trees per row (a third
            // of the ingest time). Events keep their id, in a plain column.
            try db.execute(sql: """
                CREATE TABLE events_v3 (id TEXT NOT NULL, sensor TEXT NOT NULL, timeNs INTEGER NOT NULL, source TEXT NOT NULL,
                    destination TEXT NOT NULL, proto TEXT NOT NULL, port INTEGER NOT NULL, type TEXT NOT NULL,
                    evidence TEXT NOT NULL, blocked BOOLEAN, receivedAt INTEGER NOT NULL);
                INSERT INTO events_v3 SELECT id, sensor, timeNs, source, destination, proto, port, type, evidence, blocked, receivedAt
                    FROM events ORDER BY receivedAt, id;
                DROP TABLE events;
                ALTER TABLE events_v3 RENAME TO events;
                CREATE INDEX events_on_source ON events (source);
                CREATE INDEX events_on_receivedAt ON events (receivedAt);
                """)
        }
        registerDecisionMigrations(&m)
        m.registerMigration("v6-enrollment-replace") { db in
            // Whether a token may replace an existing sensor's key (and reinstate it).
            try db.alter(table: "enrollments") { t in t.add(column: "allowReplace", .boolean).notNull().defaults(to: false) }
        }
        return m
    }

    func addEnrollment(tokenHash: Data, sensor: String, expires: Int64, replace: Bool) async throws {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM enrollments WHERE sensor = ?", arguments: [sensor])
            try db.execute(sql: "INSERT INTO enrollments (tokenHash, sensor, expires, allowReplace) VALUES (?, ?, ?, ?)",
                           arguments: [tokenHash, sensor, expires, replace])
        }
    }

    func enroll(tokenHash: Data, publicKey: Data, now: Int64, version: String) async throws -> EnrollOutcome {
        try await queue.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT sensor, expires, allowReplace FROM enrollments WHERE tokenHash = ?",
                                             arguments: [tokenHash]) else { return .refused }
            try db.execute(sql: "DELETE FROM enrollments WHERE tokenHash = ?", arguments: [tokenHash])
            let expires: Int64 = row["expires"]
            guard expires > now else { return .refused }
            let name: String = row["sensor"]
            let allowReplace: Bool = row["allowReplace"]
            if !allowReplace, try SensorRecord.exists(db, key: name) { return .nameTaken(name) }
            let record = SensorRecord(name: name, publicKey: publicKey, enrolledAt: now, revoked: false,
                                      lastSequence: 0, lastSeen: now, version: version)
            try record.save(db)
            return .enrolled(record)
        }
    }

    func sensor(_ name: String) async throws -> SensorRecord? {
        try await queue.read { db in try SensorRecord.fetchOne(db, key: name) }
    }

    func sensors() async throws -> [SensorRecord] {
        try await queue.read { db in try SensorRecord.order(Column("name")).fetchAll(db) }
    }

    func revoke(_ name: String) async throws -> Bool {
        try await queue.write { db in
            try db.execute(sql: "UPDATE sensors SET revoked = 1 WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    /// Group commit: batches that arrive while a transaction is being written go into the
    /// next one together, so concurrent sensors share one WAL write and one fsync. Each
    /// caller still gets its answer only after its own batch is durable.
    func accept(sensor: String, sequence: Int64, events: [EventRecord], now: Int64) async throws -> Bool {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Bool, any Error>) in
            let batch = PendingBatch(sensor: sensor, sequence: sequence, events: events, now: now, done: done)
            if commits.enqueue(batch) { Task { await drain() } }
        }
    }

    private func drain() async {
        while let group = commits.next() {
            do {
                let outcomes: [Bool] = try await queue.write { (db: Database) throws -> [Bool] in
                    var stored: [Bool] = []
                    for batch in group { stored.append(try Self.insert(batch, db)) }
                    return stored
                }
                for (batch, stored) in zip(group, outcomes) { batch.done.resume(returning: stored) }
            } catch {
                for batch in group { batch.done.resume(throwing: error) }
            }
        }
    }

    private static func insert(_ batch: PendingBatch, _ db: Database) throws -> Bool {
        let last = try Int64.fetchOne(db, sql: "SELECT lastSequence FROM sensors WHERE name = ?", arguments: [batch.sensor]) ?? 0
        guard batch.sequence > last else { return false }
        // One prepared statement for every row: record encoding per row was a fifth of the
        // ingest profile.
        let insert = try db.cachedStatement(sql: """
            INSERT INTO events (id, sensor, timeNs, source, destination, proto, port, type, evidence, blocked, receivedAt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for e in batch.events {
            try insert.execute(arguments: [e.id, e.sensor, e.timeNs, e.source, e.destination, e.proto, e.port, e.type,
                                           e.evidence, e.blocked, e.receivedAt])
        }
        try db.execute(sql: "UPDATE sensors SET lastSequence = ?, lastSeen = ? WHERE name = ?",
                       arguments: [batch.sequence, batch.now, batch.sensor])
        return true
    }

    func heartbeat(sensor: String, timestampMillis: Int64, version: String, status: String, now: Int64) async throws -> Bool {
        try await queue.write { db in
            try db.execute(sql: """
                UPDATE sensors SET lastHeartbeat = ?, status = ?, version = ?, lastSeen = ?
                WHERE name = ? AND lastHeartbeat < ?
                """, arguments: [timestampMillis, status, version, now, sensor, timestampMillis])
            return db.changesCount > 0
        }
    }

    func events(since: Int64, limit: Int) async throws -> [EventRecord] {
        try await queue.read { db in
            try EventRecord.filter(Column("receivedAt") >= since).order(Column.rowID).limit(limit).fetchAll(db)
        }
    }

    func eventCount() async throws -> Int {
        try await queue.read { db in try EventRecord.fetchCount(db) }
    }
}

/// A verified batch waiting for the next group commit.
struct PendingBatch: Sendable {
    var sensor: String
    var sequence: Int64
    var events: [EventRecord]
    var now: Int64
    var done: CheckedContinuation<Bool, any Error>
}

/// Batches waiting for a commit, and whether a drain task is running.
final class CommitQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var batches: [PendingBatch] = []
    private var draining = false

    /// Adds a batch; true when the caller must start a drain task.
    func enqueue(_ batch: PendingBatch) -> Bool {
        lock.lock(); defer { lock.unlock() }
        batches.append(batch)
        if draining { return false }
        draining = true
        return true
    }

    /// Everything queued so far, or nil (and the drain task ends) when nothing is.
    func next() -> [PendingBatch]? {
        lock.lock(); defer { lock.unlock() }
        guard !batches.isEmpty else {
            draining = false
            return nil
        }
        defer { batches.removeAll() }
        return batches
    }
}
