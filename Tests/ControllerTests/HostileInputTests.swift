@testable import Controller
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PortsentryShared
import Testing
@testable import ControllerCore

/// Numbers at the edges of Int64, from every place they enter: each is a clear refusal, never
/// a trap that takes the controller down.
@Suite struct HostileInputTests {
    @Test func extremeNumbersInRequestsAreRefusedNotFatal() async throws {
        let f = try await IngestTests.Fixture("sqlite")
        let api = OperatorAPITests()
        try await Application(router: f.api.router()).test(.router) { client in
            let key = try await f.enroll(client, "web-1")
            for since in ["9223372036854775807", "-9223372036854775808", "-1", "99999999999999999999", "x"] {
                #expect(try await api.call(client, .get, "/v1/events?since=\(since)").0 == 400, "since=\(since)")
            }
            #expect(try await api.call(client, .get, "/v1/events?since=60&limit=-5").0 == 200)
            for duration in ["9223372036854775807", "-9223372036854775808", "1e300", "-1", "315360001", "\"600\"", "1.5"] {
                let body = #"{"scope":"198.51.100.7","duration":\#(duration)}"#
                #expect(try await api.call(client, .post, "/v1/decisions", body: body).0 == 400, "decision duration \(duration)")
                #expect(try await api.call(client, .post, "/v1/allowlist", body: body).0 == 400, "allowlist duration \(duration)")
            }
            #expect(try await api.call(client, .post, "/v1/decisions", body: #"{"scope":"198.51.100.7","duration":315360000}"#).0 == 200)

            // A validly signed batch whose timestamp is Int64.min or .max: refused as stale.
            for timestamp in [Int64.min, Int64.max] {
                let body = Array(#"{"events":[]}"#.utf8)
                let env = try SignedEnvelope.sign(body: body, sensorID: "web-1", sequence: 1, timestampMillis: timestamp, key: key)
                try await client.execute(uri: ReportProtocol.eventsPath, method: .post, headers: IngestTests.headers(env),
                                         body: ByteBuffer(bytes: body)) { r in
                    #expect(r.status.code == 401, "timestamp \(timestamp)")
                }
            }
            #expect(try await api.call(client, .get, "/health", token: nil).0 == 200, "still answering")
        }
    }

    @Test func extremeDurationsInTheConfigAreErrorsWithALineNumber() {
        for (line, value) in [("BLOCK_DURATION", "999999999999999999d"), ("CORRELATION_WINDOW", "9999999999999999m"),
                              ("OFFENSE_MEMORY", "9223372036854775807"), ("BLOCK_MAX_DURATION", "-5"), ("SESSION_GRACE", "5x"),
                              ("PEER_MEMORY", "11y"), ("STEALTH_BLOCK_DURATION", "")] {
            let text = "# settings\n\(line) = \(value)\n"
            #expect(throws: ControllerConfig.Failure.self, "\(line) = \(value)") { try ControllerConfig.parse(text, file: "c.conf") }
            do { _ = try ControllerConfig.parse(text, file: "c.conf") } catch {
                #expect(error.description.hasPrefix("c.conf:2: \(line)"), "\(error.description)")
            }
        }
        #expect((try? ControllerConfig.parse("OFFENSE_MEMORY = 3650d\nDECISION_RETENTION = 3650d\n", file: "c.conf"))?.policy.offenseMemory == 3650 * 86_400)
        do {
            _ = try ControllerConfig.parse("PORT = 8443\n\nport = 9443\n", file: "c.conf")
            Issue.record("a repeated key was accepted")
        } catch {
            #expect(error.description == "c.conf:3: PORT is already set on line 1; remove one of them")
        }
        #expect((try? ControllerConfig.parse("PROTECT = 192.0.2.1\nPROTECT = 192.0.2.2\n", file: "c.conf"))?.policy.protected.count == 2)
    }

    @Test func theCorrelatorAndEngineTakeAnyStoredValue() async throws {
        // Events with extreme fields (a signed batch may carry them) are correlated without a trap.
        let c = FleetCorrelator(policy: CorrelationPolicy())
        let e = EventRecord(id: "x:1:0", sensor: "x", timeNs: .min, source: "203.0.113.1", destination: "10.0.0.1", proto: "TCP",
                            port: Int.max, type: "syn", evidence: "tripwire", blocked: nil, receivedAt: .max)
        #expect(c.observe([e], now: .max / 2).isEmpty)
    }
}

/// A database that exists but is empty or someone else's is refused, never silently made fresh
/// (which would forget every sensor, whose batches would then be refused as unknown).
@Suite struct DatabaseFileTests {
    @Test func anEmptyOrForeignDatabaseIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pst-db-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(FileManager.default.createFile(atPath: dir + "/empty.db", contents: Data()))
        #expect(throws: SQLiteStore.NotOurs.self) { try SQLiteStore(path: dir + "/empty.db", create: false) }
        #expect(throws: SQLiteStore.NotOurs.self) { try SQLiteStore(path: dir + "/missing.db", create: false) }
        // A SQLite file of another application.
        let foreign = try SQLiteStore(path: dir + "/ours.db")
        _ = foreign
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = ["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE notes (t TEXT)'); c.commit()",
                            dir + "/foreign.db"]
        try python.run()
        python.waitUntilExit()
        #expect(python.terminationStatus == 0)
        #expect(throws: SQLiteStore.NotOurs.self) { try SQLiteStore(path: dir + "/foreign.db", create: false) }
        // The controller's own database opens.
        _ = try SQLiteStore(path: dir + "/ours.db", create: false)
        #expect(FileManager.default.fileExists(atPath: dir + "/ours.db"))
    }
}
