import Foundation
import GRDB
import PortsentryShared

/// A stored sensor.
struct SensorRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    static let databaseTableName = "sensors"
    var name: String
    var publicKey: Data
    var enrolledAt: Int64
    var revoked: Bool
    /// Highest batch sequence accepted: anything at or below it is a replay (or a retry).
    var lastSequence: Int64
    var lastSeen: Int64
    var version: String
    /// Newest heartbeat time stamp (ms) and its status object (JSON text).
    var lastHeartbeat: Int64 = 0
    var status: String = ""
}

/// One accepted detection as stored.
struct EventRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    static let databaseTableName = "events"
    /// `sensor:sequence:index`: a retried batch maps to the same ids, so it stores nothing twice.
    var id: String
    var sensor: String
    var timeNs: Int64
    var source: String
    var destination: String
    var proto: String
    var port: Int
    var type: String
    var evidence: String
    var blocked: Bool?
    var receivedAt: Int64
}

/// The controller's storage, behind one small interface so SQLite (embedded, the default)
/// and PostgreSQL (several replicas on one database) can both serve it.
protocol ControllerStore: Sendable {
    func addEnrollment(tokenHash: Data, sensor: String, expires: Int64) async throws
    /// Consumes a one-time token and registers the sensor's key. Nil if the token is unknown,
    /// used or expired.
    func enroll(tokenHash: Data, publicKey: Data, now: Int64, version: String) async throws -> SensorRecord?
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

/// SQLite through GRDB, in WAL mode with full fsync on commit: a batch the controller has
/// acknowledged survives a SIGKILL the next instant.
final class SQLiteStore: ControllerStore {
    let queue: DatabaseQueue

    init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        queue = try DatabaseQueue(path: path, configuration: config)
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
        return m
    }

    func addEnrollment(tokenHash: Data, sensor: String, expires: Int64) async throws {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM enrollments WHERE sensor = ?", arguments: [sensor])
            try db.execute(sql: "INSERT INTO enrollments (tokenHash, sensor, expires) VALUES (?, ?, ?)",
                           arguments: [tokenHash, sensor, expires])
        }
    }

    func enroll(tokenHash: Data, publicKey: Data, now: Int64, version: String) async throws -> SensorRecord? {
        try await queue.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT sensor, expires FROM enrollments WHERE tokenHash = ?",
                                             arguments: [tokenHash]) else { return nil }
            try db.execute(sql: "DELETE FROM enrollments WHERE tokenHash = ?", arguments: [tokenHash])
            let expires: Int64 = row["expires"]
            guard expires > now else { return nil }
            let record = SensorRecord(name: row["sensor"], publicKey: publicKey, enrolledAt: now, revoked: false,
                                      lastSequence: 0, lastSeen: now, version: version)
            try record.save(db)
            return record
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

    func accept(sensor: String, sequence: Int64, events: [EventRecord], now: Int64) async throws -> Bool {
        try await queue.write { db in
            let last = try Int64.fetchOne(db, sql: "SELECT lastSequence FROM sensors WHERE name = ?", arguments: [sensor]) ?? 0
            guard sequence > last else { return false }
            for e in events { try e.insert(db, onConflict: .ignore) }
            try db.execute(sql: "UPDATE sensors SET lastSequence = ?, lastSeen = ? WHERE name = ?",
                           arguments: [sequence, now, sensor])
            return true
        }
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
            try EventRecord.filter(Column("receivedAt") >= since).order(Column("receivedAt"), Column("id")).limit(limit).fetchAll(db)
        }
    }

    func eventCount() async throws -> Int {
        try await queue.read { db in try EventRecord.fetchCount(db) }
    }
}
