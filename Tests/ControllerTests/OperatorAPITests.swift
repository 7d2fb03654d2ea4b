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

    func poll(_ client: some TestClientProtocol, key: Ed25519.PrivateKey, revision: Int64, digest: String) async throws -> (Int, [UInt8]) {
        let body = CanonicalJSON.object(["revision": .int(revision), "digest": .string(digest), "applied_ms": .int(IngestTests.now),
                                         "wait": .int(0)]).bytes
        let env = try SignedEnvelope.sign(body: body, sensorID: "web-1", sequence: 0, timestampMillis: IngestTests.now, key: key,
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

            // Nothing yet: a sensor holding nothing is in sync.
            let empty = BlockListProtocol.digest([], now: IngestTests.now / 1000)
            #expect(try await poll(client, key: key, revision: 0, digest: empty).0 == 304)

            let ban = try await call(client, .post, "/v1/decisions", body: #"{"scope":"198.51.100.0/24","duration":600,"reason":"test"}"#)
            #expect(ban.0 == 200 && ban.1["revision"] as? Int == 1)
            let (status, framed) = try await poll(client, key: key, revision: 0, digest: empty)
            #expect(status == 200)
            let update = try BlockListProtocol.open(framed, key: try f.signing.publicKey)
            #expect(update.revision == 1 && update.add.map(\.prefix.description) == ["198.51.100.0/24"])
            // In sync now; a wrong digest (kernel drift) gets a snapshot.
            let held = BlockListProtocol.digest(update.add, now: IngestTests.now / 1000)
            #expect(try await poll(client, key: key, revision: 1, digest: held).0 == 304)
            let drift = try await poll(client, key: key, revision: 1, digest: empty)
            #expect(drift.0 == 200)
            let resync = try BlockListProtocol.open(drift.1, key: try f.signing.publicKey)
            #expect(resync.isSnapshot)
            #expect(f.fleet.metrics.value("resync") == 1)

            // The controller's config protects nothing here, but a sensor's heartbeat does.
            f.fleet.protected.update(sensor: "web-1", status: #"{"protected":["192.0.2.1"]}"#)
            #expect(try await call(client, .post, "/v1/decisions", body: #"{"scope":"192.0.2.0/24"}"#).0 == 409)
            #expect(try await call(client, .post, "/v1/decisions", body: #"{"scope":"not-an-address"}"#).0 == 400)

            let allow = try await call(client, .post, "/v1/allowlist", body: #"{"scope":"198.51.100.7","reason":"partner"}"#)
            #expect(allow.0 == 200 && allow.1["lifted"] as? Int == 1)
            let delta = try await poll(client, key: key, revision: 1, digest: held)
            let lifted = try BlockListProtocol.open(delta.1, key: try f.signing.publicKey)
            #expect(lifted.base == 1 && lifted.remove.map(\.description) == ["198.51.100.0/24"])
            let active = try await call(client, .get, "/v1/decisions")
            #expect((active.1["decisions"] as? [Any])?.isEmpty == true)
            let all = try await call(client, .get, "/v1/decisions?all=1")
            #expect((all.1["decisions"] as? [Any])?.count == 1)
        }
    }
}
