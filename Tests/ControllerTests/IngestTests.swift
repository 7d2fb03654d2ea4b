@testable import Controller
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PortsentryShared
import Testing
@testable import ControllerCore

/// The controller's API in-process, with a real store (SQLite and PostgreSQL run the same
/// suite): enrollment, heartbeats, and every way a batch can be refused (each counted,
/// nothing stored).
@Suite struct IngestTests {
    static let backends = ["sqlite", "postgres"]
    static let now: Int64 = 1_764_000_000_000

    final class Fixture: @unchecked Sendable {
        let directory: URL
        let store: any ControllerStore
        let metrics = IngestMetrics()
        let signing = try! Ed25519.PrivateKey.generate()
        let api: ControllerAPI
        let fleet: FleetServices

        /// `postgres` needs PORTSENTRY_TEST_POSTGRES (host:port:user:password:database),
        /// which scripts/test.sh sets after starting a real server; each fixture gets its own schema.
        init(_ backend: String) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("pst-ctl-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            if backend == "postgres" {
                guard let spec = ProcessInfo.processInfo.environment["PORTSENTRY_TEST_POSTGRES"]?.split(separator: ":"),
                      spec.count == 5, let port = Int(spec[1]) else {
                    throw Failure("PORTSENTRY_TEST_POSTGRES is not set: run the tests with scripts/test.sh (it starts PostgreSQL)")
                }
                let schema = "t" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                store = try await PostgresStore(.init(host: String(spec[0]), port: port, user: String(spec[2]),
                                                      password: String(spec[3]), database: String(spec[4]), schema: schema),
                                                logger: .init(label: "test"))
            } else {
                store = try SQLiteStore(path: directory.appendingPathComponent("c.db").path)
            }
            fleet = try await FleetServices.make(store: store, signing: signing, policy: CorrelationPolicy(), operatorToken: "op-token",
                                                 logger: .init(label: "test"), ownAddresses: [])
            api = ControllerAPI(store: store, metrics: metrics, signingKey: try signing.publicKey, fleet: fleet,
                                logger: .init(label: "test"), clock: { IngestTests.now })
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        /// Enrolls `name` through the API; returns its key.
        func enroll(_ client: some TestClientProtocol, _ name: String) async throws -> Ed25519.PrivateKey {
            let token = "token-\(name)"
            try await store.addEnrollment(tokenHash: Data(SHA256.digest(Array(token.utf8))), sensor: name, expires: now / 1000 + 60, replace: false)
            let key = try Ed25519.PrivateKey.generate()
            let body = #"{"token":"\#(token)","public_key":"\#(Hex.encode(try key.publicKey.raw))","version":"test"}"#
            let expectedKey = Hex.encode(try signing.publicKey.raw)
            try await client.execute(uri: ReportProtocol.enrollPath, method: .post, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains(expectedKey))
            }
            return key
        }
    }

    static func event(_ port: UInt16) -> ScanEvent {
        var e = ScanEvent(time: now * 1_000_000, source: IPAddress("198.51.100.7")!, destination: IPAddress("192.0.2.10")!,
                          proto: .tcp, port: port, kind: .tcpSYN, ipOptions: .notSet)
        e.ignored = .no
        e.triggered = .yes
        return e
    }

    static func headers(_ env: SignedEnvelope) -> HTTPFields {
        var h = HTTPFields()
        h[HTTPField.Name(ReportProtocol.sensorHeader)!] = env.sensorID
        h[HTTPField.Name(ReportProtocol.sequenceHeader)!] = "\(env.sequence)"
        h[HTTPField.Name(ReportProtocol.timestampHeader)!] = "\(env.timestampMillis)"
        h[HTTPField.Name(ReportProtocol.digestHeader)!] = Hex.encode(env.bodyDigest)
        h[HTTPField.Name(ReportProtocol.signatureHeader)!] = Hex.encode(env.signature)
        return h
    }

    func post(_ client: some TestClientProtocol, _ env: SignedEnvelope, _ body: [UInt8]) async throws -> (Int, String) {
        try await client.execute(uri: ReportProtocol.eventsPath, method: .post, headers: Self.headers(env),
                                 body: ByteBuffer(bytes: body)) { response in
            (Int(response.status.code), String(buffer: response.body))
        }
    }

    @Test(arguments: backends) func enrollmentTokensAreOneTime(backend: String) async throws {
        let f = try await Fixture(backend)
        try await Application(router: f.api.router()).test(.router) { client in
            _ = try await f.enroll(client, "web-1")
            let again = #"{"token":"token-web-1","public_key":"\#(String(repeating: "ab", count: 32))"}"#
            try await client.execute(uri: ReportProtocol.enrollPath, method: .post, body: ByteBuffer(string: again)) { response in
                #expect(response.status == .unauthorized)
            }
        }
        #expect(try await f.store.sensor("web-1")?.version == "test")
    }

    @Test(arguments: backends) func heartbeatsAreSignedFreshAndNeverReplayed(backend: String) async throws {
        let f = try await Fixture(backend)
        try await Application(router: f.api.router()).test(.router) { client in
            let key = try await f.enroll(client, "web-1")
            let body = Array(#"{"uptime_seconds":5,"version":"3.0.0-test","uplink":{"delivered_events":40,"quarantined_events":2,"dropped_events":1,"sealed_events":43,"spool_batches":0}}"#.utf8)
            func send(_ env: SignedEnvelope) async throws -> Int {
                var h = Self.headers(env)
                h[HTTPField.Name(ReportProtocol.sequenceHeader)!] = nil
                return try await client.execute(uri: ReportProtocol.heartbeatPath, method: .post, headers: h,
                                                body: ByteBuffer(bytes: body)) { Int($0.status.code) }
            }
            let beat = try SignedEnvelope.sign(body: body, sensorID: "web-1", sequence: 0, timestampMillis: Self.now, key: key,
                                               domain: SignedEnvelope.heartbeatDomain)
            #expect(try await send(beat) == 200)
            #expect(try await send(beat) == 409, "the same heartbeat again is a replay")
            // A batch signature over the same bytes is not a heartbeat signature.
            let batchSigned = try SignedEnvelope.sign(body: body, sensorID: "web-1", sequence: 0, timestampMillis: Self.now + 1, key: key)
            #expect(try await send(batchSigned) == 401)
        }
        let sensor = try #require(try await f.store.sensor("web-1"))
        #expect(sensor.version == "3.0.0-test" && sensor.status.contains("uptime_seconds"))
        // What became of the sensor's events, from its heartbeat, in /metrics.
        let metrics = await f.fleet.metricsText(nowMillis: Self.now)
        #expect(metrics.contains("portsentry_controller_sensor_uplink_events{sensor=\"web-1\",state=\"quarantined\"} 2"))
        #expect(metrics.contains("portsentry_controller_sensor_uplink_events{sensor=\"web-1\",state=\"dropped\"} 1"))
    }

    @Test(arguments: backends) func signedBatchesAreStoredOnceAndEveryForgeryIsRefused(backend: String) async throws {
        let f = try await Fixture(backend)
        try await Application(router: f.api.router()).test(.router) { client in
            let key = try await f.enroll(client, "web-1")
            let other = try await f.enroll(client, "web-2")
            let body = ReportProtocol.body(events: [Self.event(79), Self.event(111)])
            let good = try SignedEnvelope.sign(body: body, sensorID: "web-1", sequence: 1, timestampMillis: Self.now, key: key)

            #expect(try await post(client, good, body).0 == 200)
            #expect(try await f.store.eventCount() == 2)
            // The same batch again (a retry after a lost answer): success, nothing new.
            let retry = try await post(client, good, body)
            #expect(retry.0 == 200 && retry.1.contains("duplicate"))

            // A second batch moves the sequence on; replaying batch 1 (signed, but old) is refused.
            let second = ReportProtocol.body(events: [Self.event(9)])
            #expect(try await post(client, try SignedEnvelope.sign(body: second, sensorID: "web-1", sequence: 2,
                                                                   timestampMillis: Self.now, key: key), second).0 == 200)
            let next = ReportProtocol.body(events: [Self.event(7)])
            func signed(_ payload: [UInt8], sensor: String = "web-1", sequence: UInt64 = 3, at time: Int64 = Self.now,
                        by signer: Ed25519.PrivateKey) throws -> SignedEnvelope {
                try SignedEnvelope.sign(body: payload, sensorID: sensor, sequence: sequence, timestampMillis: time, key: signer)
            }
            var forged = try signed(next, by: key)
            forged.signature[5] ^= 1
            let malformed = Array("{\"events\":7}".utf8)
            let cases: [(String, SignedEnvelope, [UInt8], Int, String)] = [
                ("forged signature", forged, next, 401, "bad_signature"),
                ("another sensor's key", try signed(next, by: other), next, 401, "bad_signature"),
                ("truncated body", try signed(next, by: key), Array(next.dropLast(3)), 401, "bad_signature"),
                ("replayed sequence", try signed(next, sequence: 1, by: key), next, 409, "replayed"),
                ("stale timestamp", try signed(next, at: Self.now - 3_600_000, by: key), next, 401, "stale"),
                ("unknown sensor", try signed(next, sensor: "ghost", by: key), next, 401, "unknown_sensor"),
                ("malformed body", try signed(malformed, by: key), malformed, 400, "malformed"),
            ]
            for (what, env, payload, status, counter) in cases {
                let before = f.metrics.value("refused_" + counter)
                #expect(try await post(client, env, payload).0 == status, "\(what)")
                #expect(f.metrics.value("refused_" + counter) == before + 1, "\(what) is counted")
            }
            // Oversized bodies never reach the verifier.
            let huge = [UInt8](repeating: 0x20, count: ReportProtocol.maxBodyBytes + 1)
            #expect(try await post(client, good, huge).0 == 413)
            #expect(try await f.store.eventCount() == 3, "nothing stored by any refusal")

            // A revoked sensor is refused even with a valid signature.
            #expect(try await f.store.revoke("web-1"))
            let late = try SignedEnvelope.sign(body: next, sensorID: "web-1", sequence: 3, timestampMillis: Self.now, key: key)
            #expect(try await post(client, late, next).0 == 403)

            // A refused heartbeat and enrollment are counted as what they are, not as batches.
            let bigHeartbeat = [UInt8](repeating: 0x20, count: ReportProtocol.maxHeartbeatBytes + 1)
            try await client.execute(uri: ReportProtocol.heartbeatPath, method: .post, body: ByteBuffer(bytes: bigHeartbeat)) { response in
                #expect(response.status == .contentTooLarge)
            }
            let bogus = #"{"token":"no-such-token","public_key":"\#(Hex.encode(try other.publicKey.raw))","version":"test"}"#
            try await client.execute(uri: ReportProtocol.enrollPath, method: .post, body: ByteBuffer(string: bogus)) { response in
                #expect(response.status == .unauthorized)
            }

            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("portsentry_controller_batches_accepted_total 2"))
                #expect(text.contains("portsentry_controller_events_accepted_total 3"))
                #expect(text.contains(#"portsentry_controller_batches_refused_total{reason="revoked"} 1"#))
                #expect(text.contains(#"portsentry_controller_batches_refused_total{reason="oversized"} 1"#))
                #expect(text.contains(#"portsentry_controller_heartbeats_refused_total{reason="oversized"} 1"#))
                #expect(text.contains(#"portsentry_controller_polls_refused_total{reason="oversized"} 0"#))
                #expect(text.contains("portsentry_controller_enrollments_refused_total 1"))
                #expect(text.contains("portsentry_controller_heartbeats_total 0"))
            }
            try await client.execute(uri: "/health", method: .get) { response in #expect(response.status == .ok) }
        }
    }
}

/// Two controllers starting at the same moment on an empty PostgreSQL database: the
/// migrations run one after the other under an advisory lock, both start.
@Suite struct PostgresMigrationTests {
    @Test func concurrentStartsOnAnEmptyDatabaseBothSucceed() async throws {
        guard let spec = ProcessInfo.processInfo.environment["PORTSENTRY_TEST_POSTGRES"]?.split(separator: ":"),
              spec.count == 5, let port = Int(spec[1]) else {
            throw Failure("PORTSENTRY_TEST_POSTGRES is not set: run the tests with scripts/test.sh (it starts PostgreSQL)")
        }
        for _ in 0..<3 {
            let schema = "m" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            let settings = PostgresStore.Settings(host: String(spec[0]), port: port, user: String(spec[2]), password: String(spec[3]),
                                                  database: String(spec[4]), schema: schema)
            async let a = PostgresStore(settings, logger: .init(label: "a"))
            async let b = PostgresStore(settings, logger: .init(label: "b"))
            let (first, second) = try await (a, b)
            let (x, y) = (try await first.sensors(), try await second.sensors())
            #expect(x.isEmpty && y.isEmpty)
        }
    }
}
