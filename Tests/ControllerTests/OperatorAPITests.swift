@testable import Controller
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PortsentryShared
import Testing

/// The operator API and the block-list poll, in-process on both stores: the token is
/// required, a ban becomes a signed revision a polling sensor receives, a protected scope is
/// refused, an allowlist entry lifts a ban at once.
@Suite struct OperatorAPITests {
    func call(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, body: String? = nil,
              token: String? = "op-token") async throws -> (Int, [String: Any]) {
        var h = HTTPFields()
        if let token { h[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: method, headers: h, body: body.map { ByteBuffer(string: $0) }) { r in
            (Int(r.status.code), (try? JSONSerialization.jsonObject(with: Data(buffer: r.body))) as? [String: Any] ?? [:])
        }
    }

    /// A signed poll sent at `at` (ms; each poll must be newer than the last).
    func poll(_ client: some TestClientProtocol, key: Ed25519.PrivateKey, revision: Int64, digest: String,
              at: Int64) async throws -> (Int, [UInt8]) {
        let body = WireJSON.encode(PollRequest(revision: revision, digest: digest, appliedMillis: IngestTests.now, wait: 0))
        let env = try SignedEnvelope.sign(body: body, sensorID: "web-1", sequence: 0, timestampMillis: at, key: key,
                                          domain: BlockListProtocol.pollDomain)
        var h = IngestTests.headers(env)
        h[HTTPField.Name(ReportProtocol.sequenceHeader)!] = nil
        return try await client.execute(uri: BlockListProtocol.path, method: .post, headers: h, body: ByteBuffer(bytes: body)) { r in
            (Int(r.status.code), Array(r.body.readableBytesView))
        }
    }

    @Test(arguments: IngestTests.backends) func banPollAllowAndTheToken(backend: String) async throws {
        let f = try await IngestTests.Fixture(backend)
        try await Application(router: f.api.router()).test(.router) { client in
            let key = try await f.enroll(client, "web-1")
            #expect(try await call(client, .get, "/v1/sensors", token: nil).0 == 401)
            #expect(try await call(client, .get, "/v1/sensors", token: "op-tokem").0 == 401)
            let sensors = try await call(client, .get, "/v1/sensors")
            #expect(sensors.0 == 200 && ((sensors.1["sensors"] as? [[String: Any]])?.first?["name"] as? String) == "web-1")

            let controllerKey = try f.signing.publicKey
            var clock = IngestTests.now
            /// Polls and opens the answer as a sensor does: a receipt for this very poll.
            func ask(_ revision: Int64, _ digest: String) async throws -> BlockListUpdate? {
                clock += 1
                let (status, bytes) = try await poll(client, key: key, revision: revision, digest: digest, at: clock)
                #expect(status == 200)
                return try PollReceipt.open(bytes, sensor: "web-1", pollMillis: clock, key: controllerKey).1
            }

            // Nothing yet: a sensor holding nothing is in sync (a signed "nothing new").
            let empty = BlockListProtocol.digest([], now: IngestTests.now / 1000)
            #expect(try await ask(0, empty) == nil)
            // The same poll again is a replay, refused; an answer to another poll is refused by the sensor.
            #expect(try await poll(client, key: key, revision: 0, digest: empty, at: clock).0 == 409)
            let other = try await poll(client, key: key, revision: 0, digest: empty, at: clock + 1)
            clock += 1
            #expect(throws: BlockListProtocol.Refusal.self) {
                _ = try PollReceipt.open(other.1, sensor: "web-1", pollMillis: clock - 1, key: controllerKey)
            }
            #expect(throws: BlockListProtocol.Refusal.self) {
                _ = try PollReceipt.open(other.1, sensor: "web-2", pollMillis: clock, key: controllerKey)
            }

            let ban = try await call(client, .post, "/v1/decisions", body: #"{"scope":"198.51.100.0/24","duration":600,"reason":"test"}"#)
            #expect(ban.0 == 200 && ban.1["revision"] as? Int == 1)
            let update = try #require(try await ask(0, empty))
            #expect(update.revision == 1 && update.add.map(\.prefix.description) == ["198.51.100.0/24"])
            // In sync now; a wrong digest (kernel drift) gets a snapshot.
            let held = BlockListProtocol.digest(update.add, now: IngestTests.now / 1000)
            #expect(try await ask(1, held) == nil)
            let resync = try #require(try await ask(1, empty))
            #expect(resync.isSnapshot)
            #expect(f.fleet.metrics.value("resync") == 1)

            // A sensor's claims never veto an operator: a live admin session reported by web-1
            // stops automatic decisions on its peer, but an operator's ban goes through and
            // says what it overlaps. A "gateway" off the sensor's own networks is not believed.
            var report = ProtectionReport()
            report.addresses = [IPAddress("10.0.0.5")!]
            report.networks = [try IPPrefix(parsing: "10.0.0.0/24")]
            report.gateways = [IPAddress("10.0.0.1")!, IPAddress("203.0.113.66")!]
            report.sessions = [IPAddress("192.0.2.1")!]
            f.fleet.protected.update(sensor: "web-1", report: report, now: IngestTests.now / 1000)
            let auto = try await f.fleet.engine.decide(scope: try IPPrefix(parsing: "192.0.2.1"), origin: .correlation, reason: "t",
                                                       nowMillis: IngestTests.now)
            guard case .protected = auto else { Issue.record("an automatic decision on a live admin session: \(auto)"); return }
            let foreign = try await f.fleet.engine.decide(scope: try IPPrefix(parsing: "203.0.113.66"), origin: .correlation,
                                                          reason: "t", duration: 60, nowMillis: IngestTests.now)
            guard case .decided = foreign else { Issue.record("a foreign 'gateway' claim vetoed a decision: \(foreign)"); return }
            let operatorBan = try await call(client, .post, "/v1/decisions", body: #"{"scope":"192.0.2.0/24","duration":60}"#)
            #expect(operatorBan.0 == 200)
            #expect((operatorBan.1["overlaps"] as? [String])?.first?.contains("192.0.2.1") == true)
            #expect(try await call(client, .delete, "/v1/decisions?scope=192.0.2.0/24").0 == 200)
            #expect(try await call(client, .delete, "/v1/decisions?scope=203.0.113.66").0 == 200)
            #expect(try await call(client, .post, "/v1/decisions", body: #"{"scope":"not-an-address"}"#).0 == 400)
            let fleet = try await call(client, .get, "/v1/fleet")
            #expect((fleet.1["breaker"] as? [String: Any])?["open"] as? Bool == false)
            #expect((fleet.1["protected"] as? [[String: Any]])?.contains { $0["scope"] as? String == "192.0.2.1" } == true)

            let allow = try await call(client, .post, "/v1/allowlist", body: #"{"scope":"198.51.100.7","reason":"partner"}"#)
            #expect(allow.0 == 200 && allow.1["lifted"] as? Int == 1)
            let lifted = try #require(try await ask(1, held))
            #expect(lifted.remove.map(\.description).contains("198.51.100.0/24"))
            let active = try await call(client, .get, "/v1/decisions")
            #expect((active.1["decisions"] as? [Any])?.isEmpty == true)
            let all = try await call(client, .get, "/v1/decisions?all=1")
            #expect((all.1["decisions"] as? [Any])?.count == 3)
        }
    }
}
